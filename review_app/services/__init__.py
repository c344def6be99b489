"""Use cases of the app, one module each. Streamlit pages and the CLI call these and nothing lower,
so the two can never disagree."""
