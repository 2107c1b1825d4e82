"""The Grafana dashboards, rendered locally: `render.render_dashboards` runs every panel of
grafana/dashboards/*.json on the local lake and writes a self-contained HTML page."""
