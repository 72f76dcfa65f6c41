"""creatormesh.common — the shared service kit (see README: "The service kit")."""

__version__ = "0.1.0"

import os as _os

# gRPC's pthread_atfork handlers abort a forked child while another thread is inside gRPC (seen: a subprocess
# started with preexec_fn crashed before exec). No creatormesh process uses gRPC in a forked child, so they are off
# unless the environment says otherwise. Read by gRPC's core when it initialises, i.e. before the first channel.
_os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
