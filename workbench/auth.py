"""Who may use the app: loopback is open, any other address needs ``WORKBENCH_PASSWORD`` or ``--no-auth``.

:func:`access_for` decides from the address the server listens on and the environment;
:class:`LoginGuard` checks passwords in constant time and locks a client out for a growing delay
after failed tries; :func:`process_guard` is the one guard of the process, kept here rather than in
Streamlit's ``st.cache_resource`` (which any browser can empty with a ``clear_cache`` message, and with
it every lock-out). The login form itself is UI (``pages/_login.py``); ``scripts/run-app.sh`` runs
``python -m workbench.auth HOST`` to refuse an unsafe start before the server binds.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

PASSWORD_VARIABLE = "WORKBENCH_PASSWORD"
NO_AUTH_VARIABLE = "WORKBENCH_NO_AUTH"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

NO_AUTH_WARNING = (
    "WARNING: Workbench listens on {address} with no login (--no-auth): anyone who can reach this "
    "address can run code, call tools and use the model. Set WORKBENCH_PASSWORD instead."
)


class Access(Enum):
    """How the app lets people in."""

    OPEN = "open"  # listening on loopback only, no password set
    PASSWORD = "password"  # a login form before any page
    NO_AUTH = "no-auth"  # another address, no password, explicitly allowed
    REFUSED = "refused"  # another address and neither a password nor --no-auth


@dataclass(frozen=True)
class AccessDecision:
    """What :func:`access_for` decided, and the sentence to show for it (empty for OPEN and PASSWORD)."""

    access: Access
    message: str = ""


def is_loopback(address: str) -> bool:
    """Whether ``address`` reaches only this machine (``127.0.0.0/8``, ``::1``, ``localhost``).

    An empty address means every interface, as it does for Streamlit, and so is not loopback.
    """
    host = address.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def access_for(address: str | None, env: Mapping[str, str] | None = None) -> AccessDecision:
    """Decide how the app is entered when its server listens on ``address``.

    A password, once set, is asked for on every address. Without one, loopback is open; any other
    address (or none, which means all) is refused unless ``WORKBENCH_NO_AUTH=1``.
    """
    env = os.environ if env is None else env
    shown = address or "all interfaces"
    if env.get(PASSWORD_VARIABLE):
        return AccessDecision(Access.PASSWORD)
    if is_loopback(address or ""):
        return AccessDecision(Access.OPEN)
    if _truthy(env.get(NO_AUTH_VARIABLE)):
        return AccessDecision(Access.NO_AUTH, NO_AUTH_WARNING.format(address=shown))
    return AccessDecision(
        Access.REFUSED,
        f"Workbench would listen on {shown}, where anyone on the network could run code on this machine, "
        f"but no password is set. Set {PASSWORD_VARIABLE} to a long secret (a login form then guards every "
        f"page), or listen on 127.0.0.1 only, or start with --no-auth ({NO_AUTH_VARIABLE}=1) if another "
        "layer (a VPN, a reverse proxy with its own login) already guards it.",
    )


@dataclass
class LoginOutcome:
    """The result of one try: let in or not, and what to tell the user."""

    ok: bool
    message: str = ""
    wait_s: float = 0.0


class LoginGuard:
    """Checks passwords in constant time and locks a client out after failed tries.

    After the n-th failed try in a row a client must wait ``base_delay * 2 ** (n - 1)`` seconds
    (at most ``max_delay``) before the next try is even checked. Thread-safe: one guard serves every
    browser session of the process.

    Args:
        password: The expected password.
        base_delay: The wait after the first failed try, in seconds.
        max_delay: The longest wait.
        clock: A monotonic clock (tests pass their own).
    """

    def __init__(
        self,
        password: str,
        *,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not password:
            raise ValueError(f"{PASSWORD_VARIABLE} is empty; set it to a long secret.")
        self._digest = hashlib.sha256(password.encode()).digest()
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}

    def check(self, attempt: str, client: str = "") -> LoginOutcome:
        """Check ``attempt`` for ``client`` (an IP address, or "" for everyone at once)."""
        with self._lock:
            now = self._clock()
            wait = self._locked_until.get(client, 0.0) - now
            if wait > 0:
                return LoginOutcome(
                    False, f"Too many wrong passwords: wait {whole_seconds(wait)} s, then try again.", wait
                )
            given = hashlib.sha256(attempt.encode()).digest()
            if hmac.compare_digest(given, self._digest):
                self._failures.pop(client, None)
                self._locked_until.pop(client, None)
                return LoginOutcome(True)
            failures = self._failures.get(client, 0) + 1
            self._failures[client] = failures
            delay = min(self.base_delay * 2 ** (failures - 1), self.max_delay)
            self._locked_until[client] = now + delay
            return LoginOutcome(
                False, f"Wrong password. The next try is possible in {whole_seconds(delay)} s.", delay
            )


def whole_seconds(wait: float) -> int:
    """A wait as the whole seconds to tell a user: rounded up, so never "0 s" while they must wait."""
    return max(1, math.ceil(wait))


_guards: dict[str, LoginGuard] = {}
_warned: set[str] = set()
_process_lock = threading.Lock()


def process_guard(password: str) -> LoginGuard:
    """The process's one :class:`LoginGuard` for ``password``, so a lock-out holds across sessions.

    A module-level object: no message a browser sends (Streamlit's ``clear_cache`` empties
    ``st.cache_resource``) can replace it and so reset the lock-outs.
    """
    with _process_lock:
        guard = _guards.get(password)
        if guard is None:
            guard = _guards[password] = LoginGuard(password)
        return guard


def warn_once(message: str) -> None:
    """Print ``message`` to the server's log once per process."""
    with _process_lock:
        if message in _warned:
            return
        _warned.add(message)
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench.auth ADDRESS``: exit 2 (with the reason) if listening there is unsafe."""
    args = sys.argv[1:] if argv is None else argv
    address = args[0] if args else ""
    decision = access_for(address)
    if decision.access is Access.REFUSED:
        print(f"error: {decision.message}", file=sys.stderr)
        return 2
    if decision.message:
        print(decision.message, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
