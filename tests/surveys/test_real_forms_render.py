"""Forms written by others import and render in the web questionnaire, in a real browser."""

from __future__ import annotations

import pytest

from surveys.services import create_links, import_xlsform, open_wave
from tests.sources import XLSFORMS

FORMS = {
    "xlsform_spec_test.xlsx": "Enter your name",
    "choice_filter_test.xlsx": None,
    "specify_other.xlsx": None,
    "UCL_Biomass_Plot_Form.xlsx": "Fomu kwa UCL Biomass Plots",
    "cascading_select.xlsx": "Select a state",
}

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def link_for(name: str) -> str:
    version, _ = import_xlsform(
        survey_code=name.split(".")[0].lower().replace("_", "-"),
        content=(XLSFORMS / name).read_bytes(),
        filename=name,
    )
    wave = open_wave(survey=version.survey, code="W1", geography="KZ2022", form_version=version)
    return f"/s/{create_links(wave=wave, kind='public', count=1)[0].token}/"


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(FORMS))
def test_real_form_page_renders(client, name):
    response = client.get(link_for(name))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<form" in html
    if FORMS[name]:
        assert FORMS[name] in html


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_cascading_select_filters_choices_in_the_browser(live_server, page):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + link_for("cascading_select.xlsx"))
    page.locator("#next").click()  # past the welcome page
    page.locator('input[name="selected_state"][value="texas"]').check()
    counties = page.locator('input[name="selected_county"]')
    visible = [
        counties.nth(i).get_attribute("value")
        for i in range(counties.count())
        if counties.nth(i).is_visible()
    ]
    assert sorted(visible) == ["brewster", "cameron"]
    page.locator('input[name="selected_state"][value="washington"]').check()
    visible = [
        counties.nth(i).get_attribute("value")
        for i in range(counties.count())
        if counties.nth(i).is_visible()
    ]
    assert sorted(visible) == ["king", "pierce"]
    assert errors == []
