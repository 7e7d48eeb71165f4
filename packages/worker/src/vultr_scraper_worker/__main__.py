from vultr_scraper_worker.cli import main

main()
