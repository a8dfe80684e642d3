"""Opt-in upload of anonymized, signed segments with rclone: the queue (`queue`), the transport (`rclone`),
and what is chosen and when (`uploader`)."""
