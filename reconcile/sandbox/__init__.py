"""A faithful local Truedy API: a deterministic account, its clock, and an ASGI app.

    account = generate_account(seed=7, numbers=500)
    app = create_app(account)                 # serve with uvicorn, or:
    with SandboxServer(account) as server:    # a real HTTP server on a loopback port
        ...server.url...
    account.advance(days=1)                   # a night passes: buys, releases, calls

The account knows its ground truth (`reconcile.sandbox.truth`): which numbers the
flags must catch and which invoice lines are wrong.
"""

from reconcile.sandbox.account import Account, Faults
from reconcile.sandbox.app import create_app
from reconcile.sandbox.generator import generate_account
from reconcile.sandbox.server import SandboxServer

__all__ = ["Account", "Faults", "SandboxServer", "create_app", "generate_account"]
