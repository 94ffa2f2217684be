"""The demo office: a realistic, generated office to try Mailroom on."""
