output "name" {
  description = "Node group name."
  value       = aws_eks_node_group.this.node_group_name
}

output "role_arn" {
  description = "IAM role of the nodes."
  value       = aws_iam_role.node.arn
}
