from tests.unit.controller.identity.running import identity_server

__all__ = ["identity_server"]
