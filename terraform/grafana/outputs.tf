output "folder_url" {
  description = "The marketlake folder in Grafana."
  value       = grafana_folder.marketlake.url
}

output "dashboards" {
  description = "Dashboard file -> its URL in Grafana."
  value       = { for file, dashboard in grafana_dashboard.this : file => dashboard.url }
}
