"""What the security browser tests watch: anything a page shows before the password, every host it asks.

- :func:`seed_conversations` writes one conversation per page into a fresh data folder, each holding a
  secret, so a test can tell whether a page's content reached a browser that has not signed in.
- :data:`LEAK_WATCH` is an init script for a browser context: from the first byte of every document it
  records (in ``window.__leaks``) every moment the page shows a secret, a page's own content or any
  sidebar entry. It records what appears even if it is gone a moment later.
- :func:`record_requests` collects every request a browser context makes; :func:`outside` picks the
  ones that leave the machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workbench.messages import Message, Role, ToolCall
from workbench.store import ConversationStore
from workbench.store.database import DB_FILENAME

PASSWORD = "a long test secret"
SECRETS = {"chat": "SECRET-CHAT-7f3a", "tool": "SECRET-TOOL-7f3a", "code": "SECRET-CODE-7f3a"}
PAGE_TEXT = ["Code interpreter", "Message the model", "Ask something a tool can help with", "Conversations"]

LEAK_WATCH = (
    f"const __secrets = {json.dumps(list(SECRETS.values()))}; const __pageText = {json.dumps(PAGE_TEXT)};"
    + """
(() => {
  const secrets = __secrets;
  const pageText = __pageText;
  window.__leaks = [];
  const note = (what) => { if (!window.__leaks.includes(what)) window.__leaks.push(what); };
  const check = () => {
    const body = document.body;
    if (!body) return;
    const text = body.innerText || "";
    for (const s of secrets) if (text.includes(s)) note("secret " + s);
    for (const t of pageText) if (text.includes(t)) note("page text " + t);
    for (const h of document.querySelectorAll("h1")) {
      const title = (h.innerText || "").trim();
      if (["Chat", "Tool", "Code interpreter"].includes(title)) note("page title " + title);
    }
    if (document.querySelector("[data-testid='stChatInput']")) note("a chat input");
    for (const link of document.querySelectorAll(
        "[data-testid='stSidebarNavLink'], [data-testid='stPageLink'], [data-testid='stSidebarNavItems'] a")) {
      note("sidebar entry " + (link.innerText || link.getAttribute("href") || "").trim());
    }
    const sidebar = document.querySelector("[data-testid='stSidebarUserContent']");
    if (sidebar && (sidebar.innerText || "").trim()) note("sidebar content " + sidebar.innerText.trim().slice(0, 80));
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, characterData: true});
  setInterval(check, 50);
})();
"""
)


def seed_conversations(data_dir: Path) -> dict[str, str]:
    """One conversation per page (chat, tool, code) in a new store under ``data_dir``; their ids by mode."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = ConversationStore.open(f"sqlite:///{data_dir / DB_FILENAME}")
    ids = {}
    try:
        for mode, secret in SECRETS.items():
            info = store.create(mode, title=f"about {secret}")
            store.append(info.id, 0, Message(Role.USER, f"Tell me about {secret}"))
            reply = Message(Role.ASSISTANT, f"{secret} is kept here.")
            if mode == "tool":
                reply.tool_calls = [ToolCall("current_time", {})]
            store.append(info.id, 1, reply)
            ids[mode] = info.id
    finally:
        store.close()
    return ids


def leaks(page: Any) -> list[str]:
    """What the page showed before the password (see :data:`LEAK_WATCH`)."""
    return list(page.evaluate("window.__leaks || []"))


def record_requests(context: Any) -> list[str]:
    """A list that fills with the URL of every request of the browser ``context``."""
    urls: list[str] = []
    context.on("request", lambda request: urls.append(request.url))
    return urls


def outside(urls: list[str], own: str) -> list[str]:
    """The URLs that go to another host than ``own`` (``host:port``); data: and blob: URLs stay in the browser."""
    return [
        url for url in urls if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != own
    ]
