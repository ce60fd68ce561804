"""The web dashboard and Prometheus metrics, served by the appliance itself."""
