# Services stay enabled when this module is destroyed: other workloads in the
# project may rely on them, and disabling BigQuery would be far more
# destructive than leaving an API on.
resource "google_project_service" "services" {
  for_each                   = toset(var.services)
  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = false
  disable_dependent_services = var.disable_dependent_services
}
