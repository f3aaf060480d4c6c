output "project_id" {
  description = "Project id. It depends on every enabled service: reference it instead of var.project_id so that dependent resources wait for the APIs."
  value       = var.project_id
  depends_on  = [google_project_service.services]
}

output "services" {
  description = "Services enabled by this module."
  value       = sort([for s in google_project_service.services : s.service])
}
