provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { Project = var.name_prefix, ManagedBy = "terraform" })
  }
}
