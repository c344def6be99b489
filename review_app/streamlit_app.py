"""Entry point of the web app: page config, who is signed in, the pages their role may open, and
the sidebar. Pages live in app_pages/ and call services; nothing else happens here."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

from review_app import collector, server, ui
from review_app.auth import LANDING, ROLE_SCREENS, SCREENS

PAGES_DIR = Path(__file__).resolve().parent / "app_pages"

# An emoji icon is drawn locally; a :material/...: page icon is fetched from fonts.gstatic.com.
# No page_title here: each page's title names its tab.
st.set_page_config(page_icon="⚖️", layout="wide")
store = ui.get_store()
user = ui.current_user(store)
allowed = ROLE_SCREENS[user["role"]]
landing = LANDING[user["role"]]
screens = {
    screen: st.Page(PAGES_DIR / file, title=title, icon=icon, url_path=screen)
    for screen, file, title, icon in SCREENS
    if screen in allowed
}
if not screens:
    st.error("There is nothing for your account to open yet.")
    st.stop()


def start() -> None:
    # The bare address opens the role's own screen under that screen's address, so /review (or
    # /gate...) works when opened directly too: the default page itself has no address.
    st.switch_page(screens[landing], query_params=st.query_params.to_dict())


# Every screen stays in view: a collapsed menu ("View 3 more") would hide the last steps of the
# work (Results, Scorecard, Items) from an admin.
navigation = st.navigation(
    [st.Page(start, title="Start", url_path="start", default=True, visibility="hidden")]
    + list(screens.values()),
    expanded=True,
)
with st.sidebar:
    st.caption(f"Signed in as **{ui.plain(user['name'])}** ({user['role']})")
try:
    navigation.run()
finally:
    # A page opened for the first time has imported its services by now (a page that stops
    # early ends its run with an exception, hence finally). Only in the server's own process:
    # a test runs this script inside its own, whose other objects must stay collectable.
    if server.SERVING in sys.argv[1:]:
        collector.freeze_loaded()
