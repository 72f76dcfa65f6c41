"""Fixtures shared by the allocation tests: none of its own yet (`one_torch_thread` and the rest come from the
kit's `creatormesh.common.testing`)."""
