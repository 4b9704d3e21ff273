"""The simulated WhatsApp network: servers and phones, in-process or `zapgate simnet`.

`SimNetwork` is the network; `SimLink` is how a process reaches it (`LocalSimLink` in the
same process, `HttpSimLink` over HTTP); `create_app` serves a network over HTTP."""

from zapgate.simnet.client import HttpSimLink, LocalSimLink, SimLink, make_sim_link
from zapgate.simnet.network import SimNetwork

__all__ = ["HttpSimLink", "LocalSimLink", "SimLink", "SimNetwork", "make_sim_link"]
