"""Items (admin, signer): search and filter a study's items and outputs by text, category, system
and length (after the lock also by grader result and human/judge disagreement), a page at a
time, each output rendered as reviewers see it. Before the lock it shows no outcome."""

import streamlit as st

from review_app import ui
from review_app.errors import ReviewAppError
from review_app.services import items

# Scrolls the page to its top (the main area scrolls, not the document, in a wide window).
TO_TOP = (
    "for (const box of [document.scrollingElement, ...document.querySelectorAll("
    '\'[data-testid="stMain"], [data-testid="stAppViewContainer"]\')]) '
    "{ if (box) box.scrollTop = 0; }"
)

store = ui.get_store()
actor = ui.signed_in(store, "items")

st.title("Items")
ctx = ui.study_context(store, actor, ui.settings())
if ctx is None:
    st.stop()
choices = items.browser_choices(ctx)
p = ui.plain

if choices.outcomes_visible:
    st.caption(
        "The study's thresholds are locked: each output lists the grader checks it failed and "
        "each item the judges that disagree with the human majority on it."
    )
else:
    st.caption(
        "Until the study's thresholds are locked this screen shows no outcome: no votes, "
        "verdicts, grader results or disagreements, and it cannot filter by them."
    )

text = st.text_input(
    "Search prompts and outputs",
    key="items_text",
    placeholder="any part of a prompt or an output (case-insensitive)",
)
# Each study has its own filters (its categories, systems and lengths differ).
key = f"items_{ctx.id}"
NO_FILTER = "(any)"
active = [
    name
    for name in ("categories", "systems", "check", "judge")
    if st.session_state.get(f"{key}_{name}") not in (None, [], NO_FILTER)
]
longest = max(choices.longest, 1)
if st.session_state.get(f"{key}_length", (0, longest)) != (0, longest):
    active.append("length")
# Closed unless a filter is set, so on a phone the first items are in view.
with st.expander(
    f"Filters ({len(active)} set)"
    if active
    else "Filters: category, system, length"
    + (", grader check, disagreement" if choices.outcomes_visible else ""),
    expanded=bool(active),
):
    left, middle, right = st.columns(3)
    categories = left.multiselect(
        "Categories", choices.categories, key=f"{key}_categories", placeholder="all categories"
    )
    systems = middle.multiselect(
        "Systems", choices.systems, key=f"{key}_systems", placeholder="all systems"
    )
    low, high = right.slider(
        "Output length (characters)",
        min_value=0,
        max_value=longest,
        value=(0, longest),
        key=f"{key}_length",
    )
    check, check_passed, judge = None, False, None
    if choices.outcomes_visible:
        left, middle, right = st.columns(3)
        picked_check = left.selectbox(
            "Grader check",
            [NO_FILTER, *choices.checks],
            key=f"{key}_check",
            disabled=not choices.checks,
            help="The checks of the grader versions in force on the study.",
        )
        result = middle.radio(
            "Result",
            ["failed", "passed"],
            horizontal=True,
            key=f"{key}_check_result",
            disabled=picked_check == NO_FILTER,
        )
        picked_judge = right.selectbox(
            "Disagrees with the human majority",
            [NO_FILTER, *choices.judges],
            key=f"{key}_judge",
            help="Items on which this judge's order-combined verdict differs from the human "
            "majority (any judge: any that is not a baseline); only the two systems it compared.",
        )
        if picked_check != NO_FILTER:
            check, check_passed = picked_check, result == "passed"
        if picked_judge != NO_FILTER:
            judge = picked_judge

filters = items.ItemFilters(
    text=text,
    categories=tuple(categories),
    systems=tuple(systems),
    min_length=low if low > 0 else None,
    max_length=high if high < longest else None,
    check=check,
    check_passed=check_passed,
    disagreeing_judge=judge,
)
# A new search starts on its first page: the page picker is keyed by the filters.
page_key = f"items_page_{abs(hash(filters)) % 10**8}"
try:
    result_page = items.browse_items(ctx, filters, st.session_state.get(page_key, 1))
except ReviewAppError as exc:
    st.error(p(exc))
    st.stop()

n_items, n_outputs = result_page.n_items, result_page.n_outputs
st.markdown(f"**{n_items} item{'s' * (n_items != 1)}**, {n_outputs} output{'s' * (n_outputs != 1)}")
if not result_page.items:
    st.info("No item matches these filters.")
    st.stop()

top_left, top_right = st.columns([1, 3], vertical_alignment="bottom")
top_left.number_input(
    f"Page (of {result_page.pages})",
    min_value=1,
    max_value=result_page.pages,
    value=result_page.page,
    step=1,
    key=page_key,
)
raw = top_right.toggle("Show raw text", key="items_raw")
ui.output_styles()
if st.session_state.pop(ui.ITEMS_TURNED, False):
    # Turned with the buttons below the last item: the new page is read from its top.
    st.html(
        f"<script>/* page {result_page.page} */ {TO_TOP}</script>",
        unsafe_allow_javascript=True,
    )

for item in result_page.items:
    with st.container(border=True):
        st.markdown(f"**{p(item.item_key)}** · {p(item.category or 'no category')}")
        st.caption("Prompt")
        ui.show_output(item.prompt, raw)
        if item.reference:
            with st.expander("Reference answer"):
                ui.show_output(item.reference, raw)
        for line in item.disagreements:
            st.caption(f"Disagreement: {p(line)}")
        columns = st.columns(min(len(item.outputs), 3))
        for index, output in enumerate(item.outputs):
            with columns[index % len(columns)]:
                st.markdown(f"**{p(output.system)}** ({output.length} characters)")
                if output.failed_checks:
                    st.caption("Failed: " + p(", ".join(output.failed_checks)))
                elif output.failed_checks is not None:
                    st.caption("No grader check failed")
                with st.container(border=True):
                    ui.show_output(output.text, raw)


def turn(pages: int) -> None:
    """Move the page picker by `pages` (a callback: it runs before the picker is drawn)."""
    st.session_state[page_key] = result_page.page + pages
    st.session_state[ui.ITEMS_TURNED] = True


back, where, forward = st.columns([1, 2, 1], vertical_alignment="center")
back.button(
    "Previous page",
    key="items_previous",
    on_click=turn,
    args=(-1,),
    disabled=result_page.page <= 1,
    width="stretch",
)
where.caption(
    f"Page {result_page.page} of {result_page.pages}, {items.PAGE_SIZE} items a page, by item key."
)
forward.button(
    "Next page",
    key="items_next",
    on_click=turn,
    args=(1,),
    disabled=result_page.page >= result_page.pages,
    width="stretch",
)
