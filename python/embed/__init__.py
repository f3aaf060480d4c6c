"""embed-kit: BigQuery ML image embeddings from a Terraform-provisioned project."""

__version__ = "0.1.0"
