// The review screen's keyboard and scrolling (app_pages/review.py calls reviewScreen(pair) on
// every run; `pair` changes with every new pair). Listeners are installed once per tab.
window.reviewScreen = function (pair) {
  const w = window;
  const VOTE_BUTTONS = '[class*="st-key-vote-"] button, [class*="st-key-skip-"] button';
  const RATINGS = '[class*="st-key-score-"]';
  // A click this soon after a new pair appears was aimed at the previous one.
  const SETTLE_MS = 600;

  function scrollToTop() {
    const boxes = [document.scrollingElement, ...document.querySelectorAll(
      '[data-testid="stMain"], [data-testid="stAppViewContainer"], .review-output')];
    for (const box of boxes) {
      if (box) box.scrollTop = 0;
    }
  }

  function isTextBox(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !["checkbox", "radio", "button"].includes(el.type);
  }

  function ratingGroups() {
    return [...document.querySelectorAll(RATINGS)].filter((g) => g.querySelector("button"));
  }

  function selected(group) {
    return group.querySelector('button[aria-checked="true"]');
  }

  function rate(digit) {
    const group = ratingGroups().find((g) => !selected(g));
    if (!group) return false;
    const option = [...group.querySelectorAll("button")].find(
      (b) => b.innerText.trim().split(" ").pop() === digit);
    if (!option) return false;
    option.click();
    return true;
  }

  function unrateLast() {
    const rated = ratingGroups().filter((g) => selected(g));
    if (!rated.length) return false;
    selected(rated[rated.length - 1]).click();
    return true;
  }

  function keepRatingsOutOfTabOrder() {
    // Digits rate; Tab goes from the responses straight to the vote buttons.
    for (const b of document.querySelectorAll(RATINGS + " button")) {
      if (b.getAttribute("tabindex") !== "-1") b.setAttribute("tabindex", "-1");
    }
  }

  if (!w.__reviewListeners) {
    w.__reviewListeners = true;
    document.addEventListener("click", (event) => {
      const button = event.target.closest && event.target.closest(VOTE_BUTTONS);
      if (!button) return;
      // A button drawn before this script has run for its pair belongs to another pair than
      // the one we know of: it appeared a moment ago, so the click was aimed at the previous
      // pair too (slots cycle, so "another", not "a later" one).
      const holder = button.closest('[class*="st-key-vote-"], [class*="st-key-skip-"]');
      const match = holder && /st-key-(?:vote-\w+|skip)-(\d+)/.exec(holder.className);
      const unseen = match && w.__reviewPair !== undefined && Number(match[1]) !== w.__reviewPair;
      // When the tap or key happened, not when its event is handled: while the browser is busy
      // drawing the new pair, a second tap waits in its queue and is handled after the pair
      // has been on screen for a while, although it was aimed at the previous one. A key's
      // click is made by the app, later still: its keydown says when the key was pressed.
      const pressedAt = event.isTrusted ? event.timeStamp : (w.__reviewKeyAt ?? event.timeStamp);
      if (unseen || pressedAt - (w.__reviewShownAt || 0) < SETTLE_MS) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    }, true);
    document.addEventListener("click", (event) => {
      // A click beside the shortcuts panel closes it.
      const help = document.getElementById("review-keys-help");
      if (help && !help.hidden && event.target === help) help.hidden = true;
    });
    document.addEventListener("click", () => {
      // A ticked box keeps the focus, and shortcuts ignore key presses inside inputs.
      setTimeout(() => {
        const active = document.activeElement;
        if (active && active.tagName === "INPUT" && ["checkbox", "radio"].includes(active.type)) {
          active.blur();
        }
      }, 0);
    }, true);
    document.addEventListener("keydown", (event) => {
      w.__reviewKeyAt = event.timeStamp;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      // Before the browser moves the focus (the key's default action), so it skips them.
      if (event.key === "Tab") keepRatingsOutOfTabOrder();
      const target = event.target;
      if (isTextBox(target)) {
        if (event.key === "Escape") {
          target.blur();
          event.preventDefault();
        }
        return;
      }
      let handled = false;
      const help = document.getElementById("review-keys-help");
      if (event.key === "?" && help) {
        help.hidden = !help.hidden;
        handled = true;
      } else if (event.key === "Escape" && help && !help.hidden) {
        help.hidden = true;
        handled = true;
      } else if (/^[1-5]$/.test(event.key)) handled = rate(event.key);
      else if (event.key === "Backspace") handled = unrateLast();
      if (handled) event.preventDefault();
    }, true);
  }

  // The sticky vote bar of a phone hides what scrolls beneath it with the page's own colour,
  // whichever theme is on (review.css).
  const app = document.querySelector('[data-testid="stApp"]');
  if (app) {
    document.documentElement.style.setProperty(
      "--review-page-background", getComputedStyle(app).backgroundColor);
  }

  if (w.__reviewPair !== pair) {
    // The first pair of a page load follows no click, so there is nothing to hold back.
    w.__reviewShownAt = w.__reviewPair === undefined ? 0 : performance.now();
    w.__reviewPair = pair;
    scrollToTop();
    // The new pair's boxes arrive after this script: reset them too once they are drawn.
    setTimeout(scrollToTop, 50);
    setTimeout(() => {
      scrollToTop();
      // The pair's page stays where it is from now on (the browser tests wait for this).
      w.__reviewSettled = pair;
    }, 200);
  }
};
