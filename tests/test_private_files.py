"""Private files (snapshots, export caches, export files, uploaded forms) are never served by URL."""

import importlib

import pytest
from django.urls import clear_url_caches


@pytest.fixture
def debug_urls(settings):
    """The URLconf as it is built with DEBUG on, the embedded default."""
    import config.urls

    settings.DEBUG = True
    importlib.reload(config.urls)
    clear_url_caches()
    yield
    settings.DEBUG = False
    importlib.reload(config.urls)
    clear_url_caches()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "relative",
    [
        "exports/tanys-microdata-13.csv",
        "store/wave-1-3-0-0123456789abcdef/seg-0123456789abcdef.arrow",
        "xlsforms/informal_networks.xlsx",
    ],
)
def test_files_under_media_root_are_not_served_even_with_debug_on(
    debug_urls, settings, client, relative
):
    target = settings.MEDIA_ROOT / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"every coded answer of a wave")
    response = client.get(f"/media/{relative}")
    assert response.status_code == 404
    assert b"every coded answer" not in b"".join(
        getattr(response, "streaming_content", [response.content])
    )
