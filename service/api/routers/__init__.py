"""One router per resource: jobs, studies (uploads), models, health."""
