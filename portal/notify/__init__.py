"""Notifications: mail, in-app notices, reminders and channels."""
