"""ESP event webhooks (SES via SNS, SendGrid, Mailgun, Postmark), one module per provider."""
