"""creatormesh.common — the shared service kit (see README: "The service kit")."""

__version__ = "0.1.0"
