"""The gateway: the cluster's public API, stateless, fanning out to the services behind it."""
