"""The client/admin API of a VCP: request dispatch on top of the services."""
