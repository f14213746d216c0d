import pytest

from surveys.models import Region
from surveys.regions import REGIONS_CSV, read_regions_csv
from tests.sources import SHARED

SHARED_CSV = SHARED / "kz_regions.csv"


def test_packaged_region_table_matches_the_shared_one():
    if not SHARED_CSV.exists():
        pytest.skip(f"{SHARED_CSV} is not beside this clone: nothing to compare the copy with")
    assert REGIONS_CSV.read_bytes() == SHARED_CSV.read_bytes()


@pytest.mark.django_db
def test_both_geographies_are_loaded_by_migration():
    assert Region.objects.of("KZ2013").count() == 16
    assert Region.objects.of("KZ2022").count() == 20


@pytest.mark.django_db
def test_every_current_unit_maps_to_its_2013_unit():
    rows = {row["iso_2022"]: row["unit_2013"] for row in read_regions_csv()}
    for region in Region.objects.of("KZ2022").select_related("unit_2013"):
        assert region.unit_2013.code == rows[region.code]
        assert region.unit_2013.geography == "KZ2013"
    shymkent = Region.objects.get(geography="KZ2022", code="KZ-79")
    assert shymkent.unit_2013.name_ru == "Южно-Казахстанская область"
    assert Region.objects.get(geography="KZ2013", code="KZ-KAR").successors.count() == 2


@pytest.mark.django_db
def test_tiles_do_not_overlap_within_a_geography():
    for geography in ("KZ2013", "KZ2022"):
        tiles = list(Region.objects.of(geography).values_list("tile_row", "tile_col"))
        assert len(set(tiles)) == len(tiles)


@pytest.mark.django_db
def test_region_names_follow_the_active_language():
    from django.utils import translation

    almaty = Region.objects.get(geography="KZ2022", code="KZ-19")
    with translation.override("kk"):
        assert almaty.name == "Алматы облысы"
    with translation.override("ru"):
        assert almaty.name == "Алматинская область"
    with translation.override("en"):
        assert almaty.name == "Almaty Region"
