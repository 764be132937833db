"""ActionBox: a text box whose action carries the text typed, for the sellers grid.

Why not ``ipywidgets.Text`` and a ``Button``: the browser sends the box's value as a
state update, and ipywidgets holds a state update back while an earlier one is still
unanswered by the kernel (``WidgetModel.sync`` buffers it until the kernel is idle),
whereas a button click is a custom message that is never held. Typing a name at full
speed and clicking Rename at once then reaches the kernel as the click first and the
last keystrokes after it: the seller was renamed to a prefix of the name ("Renamed to
Andersson." for "Andersson Daughters (checked)"), and sync pushed the cut name.

Here the browser never syncs the text while typing. Enter (or the box's button) sends
one custom message holding ``input.value`` as it is at that instant, read from the
DOM; Escape empties the box and says so. The kernel acts on the text in the message,
so no action can see a stale prefix, whatever the transport does with state updates.

Python sets the text shown with ``box.value = ...`` (a synced trait the browser only
reads); ``box.submit(text)`` acts as Enter does, for code and tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

__all__ = ["ActionBox"]

_ESM = r"""
export default {
  render({ model, el }) {
    const box = document.createElement('div');
    box.className = 'sellerbench-actionbox';
    box.style.cssText = 'display:flex;gap:4px;align-items:center;margin:2px 4px 2px 0';
    // Keys typed here are the box's: JupyterLab's notebook shortcuts must not see them.
    box.setAttribute('data-lm-suppress-shortcuts', 'true');
    const input = document.createElement('input');
    input.type = 'text';
    input.className = 'sellerbench-actionbox-input jupyter-widgets widget-text';
    input.style.cssText = 'height:26px;box-sizing:border-box;padding:0 6px;'
      + 'border:1px solid var(--jp-border-color1,#bbb);border-radius:2px;'
      + 'font:inherit;font-size:var(--jp-widgets-font-size,13px);'
      + 'background:var(--jp-widgets-input-background-color,#fff);'
      + 'color:var(--jp-widgets-input-color,#000)';
    input.style.width = model.get('width');
    input.placeholder = model.get('placeholder');
    input.value = model.get('value');
    let lastSent = null;  // the text of our own last message: its echo is not applied
    const send = (event) => {
      lastSent = input.value;
      model.send({ event, value: input.value });
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        send('submit');
      } else if (e.key === 'Escape') {
        e.preventDefault();
        input.value = '';
        send('escape');
      }
      e.stopPropagation();
    });
    box.appendChild(input);
    if (model.get('button')) {
      const button = document.createElement('button');
      button.className = 'sellerbench-actionbox-button jupyter-button widget-button';
      button.textContent = model.get('button');
      button.title = model.get('hint');
      button.style.cssText = 'height:26px;width:auto;padding:0 10px';
      button.addEventListener('click', () => send('submit'));
      box.appendChild(button);
    }
    model.on('change:value', () => {
      const text = model.get('value');
      if (text === lastSent && text !== '') return;  // the echo of what we sent
      lastSent = null;
      if (input.value !== text) input.value = text;
    });
    model.on('change:placeholder', () => { input.placeholder = model.get('placeholder'); });
    el.appendChild(box);
  },
};
"""


class ActionBox(anywidget.AnyWidget):
    """A text box (and optional button) whose Enter/click sends the text typed with it."""

    _esm = _ESM
    value = traitlets.Unicode("").tag(sync=True)  # what the box shows; set by Python
    placeholder = traitlets.Unicode("").tag(sync=True)
    button = traitlets.Unicode("").tag(sync=True)  # the button's label; "" for none
    hint = traitlets.Unicode("").tag(sync=True)  # the button's tooltip
    width = traitlets.Unicode("200px").tag(sync=True)

    def __init__(self, *, on_submit: Callable[[str], Any] | None = None,
                 on_escape: Callable[[], Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_submit = on_submit or (lambda _text: None)
        self._on_escape = on_escape or (lambda: None)
        self.submits = 0  # actions received (tests read it)
        self._lock = threading.Lock()
        self.on_msg(self._message)

    def _message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        event, text = content.get("event"), content.get("value")
        if not isinstance(text, str):
            return
        if event == "submit":
            self.submit(text)
        elif event == "escape":
            with self._lock:
                self.value = ""
            self._on_escape()

    def submit(self, text: str | None = None) -> Any:
        """Act on ``text`` (default: the box's value) as Enter or the button does."""
        text = self.value if text is None else text
        with self._lock:
            self.value = text
            self.submits += 1
        return self._on_submit(text)
