"""vultr-scraper jobs: plain async job functions taking arq's ``ctx`` and their domain logic.

Every job can be awaited directly in a test; nothing here knows about the CLI.
"""
