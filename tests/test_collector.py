"""What the cyclic garbage collector walks: the server's process freezes what it loaded, once per
batch of new modules; a test's process running the app script is never frozen."""

import gc
import subprocess
import sys
import textwrap

from review_app import server
from tests.test_app_shell import APP, open_app, token_of

FREEZES = textwrap.dedent(
    """
    import gc
    from review_app import collector

    collector.freeze_loaded()
    first = gc.get_freeze_count()
    collector.freeze_loaded()
    again = gc.get_freeze_count()
    made = [[] for _ in range(1000)]  # what a request allocates stays collectable
    collector.freeze_loaded()
    after_allocating = gc.get_freeze_count()
    import colorsys  # noqa: F401  (a module nothing imported yet)
    collector.freeze_loaded()
    after_import = gc.get_freeze_count()
    print(first > 0, again == first, after_allocating == first, after_import > first)
    """
)


def test_what_a_process_loaded_is_frozen_once_per_batch_of_new_modules():
    # In a process of its own: freezing this test's process would keep its garbage forever.
    done = subprocess.run(
        [sys.executable, "-c", FREEZES], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split() == ["True", "True", "True", "True"]


def test_the_app_script_freezes_nothing_outside_the_servers_own_process(demo_store):
    before = gc.get_freeze_count()
    at = open_app(token_of(demo_store.demo_links["demo-admin"]))
    assert not at.exception and at.title[0].value == "Workspace"
    assert gc.get_freeze_count() == before


SERVED = textwrap.dedent(
    """
    import gc, sys
    from streamlit.testing.v1 import AppTest

    sys.argv = [sys.argv[1], sys.argv[2]]  # as `streamlit run APP -- --serving` passes them
    app = AppTest.from_file(sys.argv[0], default_timeout=60)
    app.query_params["token"] = sys.stdin.read().strip()
    app.run()
    print(app.title[0].value, gc.get_freeze_count() > 0)
    """
)


def test_the_app_freezes_what_its_page_loaded_in_the_servers_own_process(demo_store):
    # `review-app serve` passes the app server.SERVING; the app then freezes after a page run.
    # The workspace is the test's (REVIEW_APP_DB, inherited).
    done = subprocess.run(
        [sys.executable, "-c", SERVED, APP, server.SERVING],
        input=token_of(demo_store.demo_links["demo-admin"]),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.split() == ["Workspace", "True"]
