output "role_arn" {
  description = "The ServiceAccount's eks.amazonaws.com/role-arn annotation, the ECS task definition's taskRoleArn, or another account's auditor_role_arn."
  value       = aws_iam_role.auditor.arn
}

output "role_name" {
  description = "The role's name."
  value       = aws_iam_role.auditor.name
}
