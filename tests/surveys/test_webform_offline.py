"""Nothing lost offline: the outbox keeps a finished interview on the device (IndexedDB)
until the server confirmed it stored it, and the service worker keeps the form's page, so
a reload with no connection still shows it. Real Chromium, real server."""

from __future__ import annotations

import json
import time

import pytest

from surveys.models import Submission
from tests.surveys.webform_fixtures import instrument_wave, public_link, stored_state

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUEUED_EN = "Your answers are saved on this device"


def outbox_items(page) -> list[dict]:
    return page.evaluate(
        """() => new Promise((resolve, reject) => {
            const req = indexedDB.open('tanys-web', 1);
            req.onupgradeneeded = () => req.result.createObjectStore('outbox', { keyPath: 'id' });
            req.onsuccess = () => {
                const all = req.result.transaction('outbox').objectStore('outbox').getAll();
                all.onsuccess = () => { resolve(all.result); req.result.close(); };
                all.onerror = () => reject(all.error);
            };
            req.onerror = () => reject(req.error);
        })"""
    )


def wait_until_cached(page, url: str) -> None:
    """The service worker controls the origin and keeps the page (its files come with it)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        kept = page.evaluate(
            "async (url) => !!(await caches.keys()).length && !!(await caches.match(url, {ignoreVary: true}))"
            " && !!(await caches.match(document.querySelector('script[src*=form]').src))",
            url,
        )
        if kept:
            return
        time.sleep(0.2)
    raise AssertionError("the service worker did not keep the page")


@pytest.fixture
def form(page, live_server):
    link = public_link(instrument_wave())
    url = f"{live_server.url}/s/{link.token}/?lang=en"
    page.goto(url, wait_until="networkidle")
    page.evaluate(stored_state(link.token, lang="en"))
    page.reload(wait_until="networkidle")
    wait_until_cached(page, url)
    return link, url


def test_offline_send_is_queued_survives_a_reload_and_goes_by_itself(page, form):
    link, url = form
    context = page.context
    context.set_offline(True)
    # A reload with no connection: the form, with the draft, from the worker's cache.
    page.reload(wait_until="load")
    page.locator("#submit").wait_for()
    assert page.locator("#submit").is_visible()
    assert page.input_value("#f-BIRTH_YEAR") == "1985"

    page.locator("#submit").click()
    page.locator("#queued").wait_for()
    assert QUEUED_EN in page.locator("#queued").inner_text()
    assert "no connection" in page.locator("#queued-status").inner_text()
    assert page.locator("#summary").inner_text() == ""  # waiting is not an error
    assert page.locator("#tanys-form").is_hidden()
    (item,) = outbox_items(page)
    assert item["id"] == "5b1c3d0e-1111-4222-8333-944455556666"
    assert item["body"]["answers"]["BIRTH_YEAR"] == "1985"
    assert Submission.objects.count() == 0

    # Reload again, still offline: the queued state is still there.
    page.reload(wait_until="load")
    page.locator("#queued").wait_for()
    assert QUEUED_EN in page.locator("#queued").inner_text()
    assert len(outbox_items(page)) == 1

    # Back online: it sends by itself, the server confirms, the respondent is thanked.
    context.set_offline(False)
    page.wait_for_url("**/thanks/**", timeout=20_000)
    assert "Thank you very much for taking part" in page.locator("main").inner_text()
    assert Submission.objects.count() == 1
    assert str(Submission.objects.get().instance_id) == item["id"]
    page.goto(url, wait_until="networkidle")
    assert outbox_items(page) == []  # deleted only once stored
    assert page.locator("#done").is_visible()


def test_a_server_answering_503_with_retry_after_is_retried_and_stores_once(page, form):
    link, _ = form
    attempts: list[float] = []

    def busy_then_through(route):
        if route.request.method != "POST":
            route.fallback()
            return
        attempts.append(time.monotonic())
        if len(attempts) <= 2:
            route.fulfill(
                status=503,
                headers={"Retry-After": "2", "Content-Type": "application/json"},
                body=json.dumps({"code": "unavailable", "message": "Try again shortly."}),
            )
        else:
            route.fallback()

    page.route(f"**/s/{link.token}/", busy_then_through)
    page.locator("#submit").click()
    page.locator("#queued").wait_for()
    assert "next attempt" in page.locator("#queued-status").inner_text().lower()
    page.wait_for_url("**/thanks/**", timeout=30_000)
    assert len(attempts) == 3
    # Retry-After honoured: no attempt sooner than two seconds after a 503.
    assert attempts[1] - attempts[0] >= 1.9 and attempts[2] - attempts[1] >= 1.9
    assert Submission.objects.count() == 1


def test_a_refused_interview_stays_on_the_device_with_the_reason(page, form):
    link, _ = form
    wave = link.wave
    wave.is_open = False
    wave.save()
    page.locator("#submit").click()
    page.locator("#summary").filter(has_text="closed").wait_for()
    assert page.locator("#tanys-form").is_visible()
    (item,) = outbox_items(page)
    assert item["state"] == "rejected" and item["last"]["status"] == 410
    assert page.evaluate(f"localStorage.getItem('tanys:{link.token}')") is not None
    assert Submission.objects.count() == 0


def test_outbox_api_backoff_with_jitter_and_a_custom_transport(page, live_server):
    """The module on its own, as another app (the tablet's batch sync) would use it."""
    link = public_link(instrument_wave())
    page.goto(f"{live_server.url}/s/{link.token}/?lang=en", wait_until="networkidle")
    result = page.evaluate(
        """async () => {
            const events = [], outcomes = ['retry', 'retry', 'retry', 'retry', 'retry', 'stored'];
            const box = TanysOutbox.open({
                db: 'outbox-test', store: 'items', first: 1000, max: 4000,
                transport: async () => ({ kind: outcomes.shift(), status: 0 }),
                onEvent: (e) => events.push([e.type, e.delay === undefined ? null : e.delay]),
            });
            await box.put({ id: 'a', url: '/nowhere/', body: { n: 1 }, meta: { app: 'tablet' } });
            const kept = await box.get('a');
            for (let i = 0; i < 6; i++) await box.send('a');
            const left = await box.list();
            await box.put({ id: 'b', url: '/nowhere/', body: {} });
            const refusing = TanysOutbox.open({
                db: 'outbox-test', store: 'items',
                transport: async () => ({ kind: 'rejected', status: 400, body: { code: 'answers' } }),
            });
            await refusing.send('b');
            return { events, kept, left, rejected: await refusing.get('b') };
        }"""
    )
    assert result["kept"]["meta"] == {"app": "tablet"} and result["kept"]["state"] == "queued"
    delays = [delay for kind, delay in result["events"] if kind == "retry"]
    steps = [1000, 2000, 4000, 4000, 4000]  # doubling, up to the ceiling
    assert len(delays) == 5
    for delay, step in zip(delays, steps, strict=True):
        assert step / 2 <= delay <= step
    assert len(set(delays)) == 5  # jittered
    kinds = [kind for kind, _ in result["events"]]
    assert kinds[:2] == ["queued", "sending"]
    assert kinds[-3:] == ["sending", "stored", "queued"]  # the last: item b put
    assert result["left"] == []  # deleted once stored
    # A refusal keeps the item, marked, with the server's code, and is not retried.
    assert result["rejected"]["state"] == "rejected"
    assert result["rejected"]["last"]["code"] == "answers"
    assert result["rejected"]["attempts"] == 1


def test_retry_after_is_read_as_seconds_or_a_date(page, live_server):
    link = public_link(instrument_wave())
    page.goto(f"{live_server.url}/s/{link.token}/", wait_until="networkidle")
    seconds, date, bad = page.evaluate(
        """() => [TanysOutbox.retryAfter('120'),
                  TanysOutbox.retryAfter(new Date(Date.now() + 30000).toUTCString()),
                  TanysOutbox.retryAfter('soon')]"""
    )
    assert seconds == 120_000
    assert 28_000 <= date <= 30_000
    assert bad is None
