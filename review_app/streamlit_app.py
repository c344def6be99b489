"""Entry point of the web app: page config, who is signed in, the pages their role may open, and
the sidebar. Pages live in app_pages/ and call services; nothing else happens here."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from review_app import ui
from review_app.auth import ROLE_SCREENS

PAGES_DIR = Path(__file__).resolve().parent / "app_pages"

# (screen, file, title, icon); a role sees the screens ROLE_SCREENS grants it, in this order.
PAGES = [
    ("review", "review.py", "Review", ":material/rate_review:"),
    ("home", "home.py", "Workspace", ":material/home:"),
    ("judge", "judge_runs.py", "Judge runs", ":material/gavel:"),
    ("calibration", "calibration.py", "Calibration", ":material/tune:"),
    ("disagreements", "disagreements.py", "Disagreements", ":material/compare_arrows:"),
    ("results", "results.py", "Results", ":material/leaderboard:"),
    ("gate", "gate.py", "Gate", ":material/verified:"),
]

# An emoji icon is drawn locally; a :material/...: page icon is fetched from fonts.gstatic.com.
st.set_page_config(page_title="Review", page_icon="⚖️", layout="wide")
store = ui.get_store()
user = ui.current_user(store)
allowed = ROLE_SCREENS[user["role"]]
# Reviewers land on the review screen; admins and signers on the workspace overview.
landing = "review" if user["role"] == "reviewer" else "home"
pages = [
    st.Page(PAGES_DIR / file, title=title, icon=icon, url_path=screen, default=screen == landing)
    for screen, file, title, icon in PAGES
    if screen in allowed
]
if not pages:
    st.error("There is nothing for your account to open yet.")
    st.stop()
navigation = st.navigation(pages)
with st.sidebar:
    st.caption(f"Signed in as **{ui.plain(user['name'])}** ({user['role']})")
navigation.run()
