"""Personal links start where reviewers reach the app: the public URL when set (validated, a path
prefix allowed), else the address the browser reached, else the server's own host and port; the
command line says which address it used."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from review_app import links
from review_app.cli import main
from review_app.errors import InputError
from review_app.services import demo, people
from review_app.settings import Settings

PAGES = Path(__file__).resolve().parent.parent / "review_app" / "app_pages"


# ---- the public URL ----


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://review.example.com", "https://review.example.com"),
        ("https://review.example.com/", "https://review.example.com"),
        ("https://Example.COM/review/", "https://example.com/review"),
        ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
        ("https://example.com:443/review", "https://example.com/review"),
        ("http://example.com:80", "http://example.com"),
        ("https://example.com:8443/a/b/", "https://example.com:8443/a/b"),
        ("http://[::1]:9000/", "http://[::1]:9000"),
        ("  https://example.com/review/  ", "https://example.com/review"),
    ],
)
def test_a_public_url_is_kept_in_one_form(given, kept):
    assert links.check_public_url(given) == kept


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("review.example.com", "must start with http:// or https://"),
        ("ftp://example.com", "must start with http:// or https://"),
        ("https://", "names no host"),
        ("https:///review", "names no host"),
        ("https://example.com/review?x=1", "must not have a query or fragment"),
        ("https://example.com/#top", "must not have a query or fragment"),
        ("https://example.com/review?", "must not have a query or fragment"),
        ("https://ann:secret@example.com", "must not carry a user name or password"),
        ("https://example.com:99999", "is not an address"),
        ("https://example.com:0", "a port is between 1 and 65535"),
        ("https://example.com/a/../b", "has an unusable path"),
        ("https://example.com//review", "has an unusable path"),
        ("https://example.com/my review", "must not contain spaces"),
        ('https://example.com/"><script>', "has a character a URL cannot hold as it is"),
        ("https://exa<mple.com", "has a character a URL cannot hold as it is"),
    ],
)
def test_an_unusable_public_url_is_one_line_saying_why(given, said):
    with pytest.raises(InputError, match=said) as caught:
        links.check_public_url(given)
    assert "\n" not in str(caught.value)


def test_the_setting_is_checked_where_it_is_read():
    settings = Settings.from_env({"REVIEW_APP_PUBLIC_URL": "https://example.com/review/"})
    assert settings.public_url == "https://example.com/review"
    with pytest.raises(InputError, match="^REVIEW_APP_PUBLIC_URL: public URL 'example.com'"):
        Settings.from_env({"REVIEW_APP_PUBLIC_URL": "example.com"})
    with pytest.raises(InputError, match="REVIEW_APP_PORT=70000: a port is between 1 and 65535"):
        Settings.from_env({"REVIEW_APP_PORT": "70000"})


def test_the_old_name_of_the_setting_is_refused_rather_than_ignored():
    # Ignored, it would leave every link on another address without a word.
    with pytest.raises(InputError, match="REVIEW_APP_BASE_URL is now called REVIEW_APP_PUBLIC_URL"):
        Settings.from_env({"REVIEW_APP_BASE_URL": "https://example.com"})


def test_the_path_of_a_public_url_is_where_the_server_serves_the_app():
    assert links.path_prefix("https://example.com/review") == "review"
    assert links.path_prefix("https://example.com/team/review") == "team/review"
    assert links.path_prefix("https://example.com") == ""
    assert links.path_prefix("") == ""


# ---- which address links start with ----


def test_the_public_url_wins_over_the_browser_and_the_server():
    settings = Settings(public_url="https://example.com/review/", port=9000)
    base = links.link_base(settings, browser_url="http://127.0.0.1:9000")
    assert base == links.LinkBase("https://example.com/review", "public")
    assert links.personal_link(base, "T0K") == "https://example.com/review/?token=T0K"
    assert base.note() == "links use https://example.com/review, the public URL"


def test_without_a_public_url_a_screen_uses_the_address_its_browser_reached():
    page = "https://proxy.example.org:8443/review/people"
    browser = links.browser_base(page, "people")
    assert browser == "https://proxy.example.org:8443/review"
    base = links.link_base(Settings(), browser_url=browser)
    assert base.source == "browser"
    assert links.personal_link(base, "T") == "https://proxy.example.org:8443/review/?token=T"


@pytest.mark.parametrize(
    ("page_url", "base"),
    [
        ("http://127.0.0.1:8502/people", "http://127.0.0.1:8502"),
        ("http://127.0.0.1:8502/people/", "http://127.0.0.1:8502"),
        ("http://127.0.0.1:8502", "http://127.0.0.1:8502"),
        # Only the page's own last segment is the page: a prefix ending in its letters stays.
        ("https://example.com/teampeople", "https://example.com/teampeople"),
        ("https://example.com/people/people", "https://example.com/people"),
        (None, None),
        ("", None),
        ("about:blank", None),
    ],
)
def test_the_browser_address_loses_only_the_page(page_url, base):
    assert links.browser_base(page_url, "people") == base


@pytest.mark.parametrize(
    ("host", "port", "base"),
    [
        ("127.0.0.1", 8501, "http://127.0.0.1:8501"),
        ("0.0.0.0", 9000, "http://127.0.0.1:9000"),
        ("::", 9000, "http://127.0.0.1:9000"),
        ("review-box.lan", 8600, "http://review-box.lan:8600"),
        ("::1", 8600, "http://[::1]:8600"),
    ],
)
def test_without_either_the_command_line_uses_the_servers_host_and_port(host, port, base):
    settings = Settings(host=host, port=port)
    assert links.link_base(settings) == links.LinkBase(base, "server")
    assert links.link_base(settings).note() == (
        f"links use {base} (set REVIEW_APP_PUBLIC_URL to change)"
    )
    assert links.link_base(settings).note(option=True) == (
        f"links use {base} (set REVIEW_APP_PUBLIC_URL or --public-url to change)"
    )


def test_an_issued_link_opens_as_its_holder(store):
    settings = Settings.from_env({"REVIEW_APP_PUBLIC_URL": "https://example.com/review/"})
    _, link = people.add_reviewer(store, settings, "ada", "admin", actor=None)
    assert link.startswith("https://example.com/review/?token=")
    assert people.authenticate(store, link.split("?token=")[1])["name"] == "ada"


def test_a_restarted_demo_keeps_its_links_on_the_new_address(store, tmp_path):
    db = str(tmp_path / "demo.db")
    first = demo.seed_demo(store, Settings(db=db, port=8501))
    again = demo.seed_demo(store, Settings(db=db, port=9100))
    for name, link in first.items():
        token = link.split("?token=")[1]
        assert link == f"http://127.0.0.1:8501/?token={token}"
        assert again[name] == f"http://127.0.0.1:9100/?token={token}"


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8501", True),
        ("http://localhost:8501", True),
        ("http://[::1]:8501", True),
        ("http://127.0.1.1", True),
        ("http://10.0.0.5:8501", False),
        ("https://review.example.com/review", False),
    ],
)
def test_an_address_on_this_machine_only_is_told_apart(url, local):
    assert links.on_this_machine_only(url) is local


# ---- the command line ----


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_reviewers_add_says_which_address_its_link_uses(capsys, monkeypatch):
    monkeypatch.setenv("REVIEW_APP_PORT", "8622")
    code, out, _ = run(capsys, "reviewers", "add", "boss", "--role", "admin")
    *_, note, _, link = out.strip().splitlines()
    assert code == 0
    assert note == "links use http://127.0.0.1:8622 (set REVIEW_APP_PUBLIC_URL to change)"
    assert link.startswith("http://127.0.0.1:8622/?token=")
    monkeypatch.setenv("REVIEW_APP_PUBLIC_URL", "https://example.com/review/")
    code, out, _ = run(
        capsys, "--token", link.split("token=")[1], "reviewers", "add", "ann", "--role", "reviewer"
    )
    *_, note, _, link = out.strip().splitlines()
    assert note == "links use https://example.com/review, the public URL"
    assert link.startswith("https://example.com/review/?token=")


def test_the_demo_builds_its_links_on_its_port_or_public_url(capsys):
    code, out, _ = run(capsys, "demo", "--no-serve", "--port", "8777")
    lines = out.strip().splitlines()
    assert code == 0
    assert (
        "links use http://127.0.0.1:8777 (set REVIEW_APP_PUBLIC_URL or --public-url to change)"
        in lines
    )
    assert lines[-1].startswith("http://127.0.0.1:8777/?token=")
    code, out, _ = run(capsys, "demo", "--no-serve", "--public-url", "https://example.com/review/")
    lines = out.strip().splitlines()
    assert "links use https://example.com/review, the public URL" in lines
    assert lines[-1].startswith("https://example.com/review/?token=")
    assert all("127.0.0.1" not in line for line in lines if "?token=" in line)


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_an_unusable_public_url_stops_the_command_before_anything_starts(
    capsys, command, isolated_workspace
):
    with pytest.raises(SystemExit) as stopped:
        main([command, "--public-url", "review.example.com"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert err == (
        "error: argument --public-url: public URL 'review.example.com' must start with http:// "
        "or https://; e.g. https://review.example.com or https://example.com/review/ "
        f"(see review-app {command} --help)\n"
    )
    assert not isolated_workspace.exists()


def test_a_malformed_setting_is_one_line_from_any_command(capsys, monkeypatch):
    monkeypatch.setenv("REVIEW_APP_PUBLIC_URL", "ftp://example.com")
    code, out, err = run(capsys, "reviewers", "add", "boss", "--role", "admin")
    assert code == 1 and out == ""
    assert err.startswith("error: REVIEW_APP_PUBLIC_URL: public URL 'ftp://example.com' must ")
    assert err.count("\n") == 1


# ---- the Reviewers screen ----


def issue_on_screen(admin_token: str, url: str | None) -> AppTest:
    at = AppTest.from_file(str(PAGES / "people.py"), default_timeout=60)
    at.query_params["token"] = admin_token
    if url is not None:
        at.context = {"url": url}
    at.run()
    at.text_input(key="people_name").input("maya")
    at.selectbox(key="people_role").select("reviewer")
    at.button(key="people_add").click().run()
    assert not at.exception
    return at


@pytest.fixture
def admin(store, settings) -> str:
    _, link = people.add_reviewer(store, settings, "ada", "admin", actor=None)
    return link.split("token=")[1]


def test_the_screen_builds_the_link_on_the_address_its_browser_reached(store, admin):
    at = issue_on_screen(admin, "https://proxy.example.org/review/people")
    [link] = [c.value for c in at.code]
    assert link.startswith("https://proxy.example.org/review/?token=")
    assert people.authenticate(store, link.split("token=")[1])["name"] == "maya"
    [caption] = [c.value for c in at.caption if "Links start with" in c.value]
    assert caption.startswith(
        "Links start with `https://proxy.example.org/review`, the address you opened the app at. "
        "If reviewers"
    )
    assert "`REVIEW_APP_PUBLIC_URL`" in caption


def test_the_screen_uses_the_public_url_when_it_is_set(store, admin, monkeypatch):
    monkeypatch.setenv("REVIEW_APP_PUBLIC_URL", "https://review.example.com/")
    at = issue_on_screen(admin, "http://10.0.0.5:8501/people")
    [link] = [c.value for c in at.code]
    assert link.startswith("https://review.example.com/?token=")
    assert any(
        c.value == "Links start with `https://review.example.com`, the app's public address "
        "(`REVIEW_APP_PUBLIC_URL`)."
        for c in at.caption
    )


def test_without_a_browser_address_the_screen_falls_back_to_the_server(store, admin, monkeypatch):
    monkeypatch.setenv("REVIEW_APP_PORT", "8655")
    at = issue_on_screen(admin, None)
    [link] = [c.value for c in at.code]
    assert link.startswith("http://127.0.0.1:8655/?token=")
    assert any(
        c.value.startswith(
            "Links start with `http://127.0.0.1:8655`, this server. It opens only on this machine."
        )
        for c in at.caption
    )
