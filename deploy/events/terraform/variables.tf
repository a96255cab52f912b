variable "queue_name" {
  description = "The queue's name; the dead-letter queue is named after it with -dlq."
  type        = string
  default     = "vpc-auditor-events"
}

variable "organization_id" {
  description = "With AWS Organizations, the organization's id (o-...): the default event bus then accepts the events member accounts forward. Empty: only this account's events."
  type        = string
  default     = ""
  validation {
    condition     = var.organization_id == "" || can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id is empty or an organization id (o-...)."
  }
}

variable "max_receive_count" {
  description = "Deliveries of a message whose re-scan keeps failing before SQS moves it to the dead-letter queue."
  type        = number
  default     = 5
}
