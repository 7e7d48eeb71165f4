# Configurations evaluated against nixos-module/ by eval-module.nix. Each is a NixOS module.
{
  # Nothing but `enable`: local Redis on a unix socket, no secrets, HTTP on loopback.
  default = {
    services.vultr-scraper.enable = true;
  };

  # Everything set: API key as a credential, an environment file, firewall, custom settings.
  full = {
    services.vultr-scraper = {
      enable = true;
      apiKeyFile = "/run/keys/vultr-api-key";
      credentialFiles.http-token = "/run/keys/vultr-scraper-http-token";
      environmentFile = "/run/keys/vultr-scraper.env";
      openFirewall = true;
      settings = {
        http.listen = "[::]:9090";
        http.token_file = "http-token";
        worker.job_completion_wait = 45.5;
        log.level = "DEBUG";
        vultr.base_url = "http://127.0.0.1:8001/v2";
        catalog.gate.max_count_drop = 0.3;
        health.endpoints = [
          {
            name = "site";
            url = "https://example.org/healthz";
            status = [ 200 ];
          }
        ];
      };
    };
  };

  # The configuration.nix example of docs/nixos.md (keep the two in step).
  documented = {
    services.vultr-scraper = {
      enable = true;
      apiKeyFile = "/run/keys/vultr-api-key";
      credentialFiles.http-token = "/run/keys/vultr-scraper-http-token";
      environmentFile = "/run/keys/vultr-scraper.env";
      redis.createLocally = true;
      openFirewall = true;
      settings = {
        http = {
          listen = "0.0.0.0:8080";
          token_file = "http-token";
        };
        worker.job_completion_wait = 30;
        log.level = "INFO";
        catalog.gate.max_count_drop = 0.2;
        schedules.scrape_catalog.minute = [
          0
          30
        ];
        health.endpoints = [
          {
            name = "website";
            url = "https://example.org/healthz";
            status = [ 200 ];
          }
        ];
      };
    };
  };

  # The history archive in a directory of its own, and in a bucket.
  archiveDirectory = {
    services.vultr-scraper = {
      enable = true;
      settings.history.archive = "/srv/vultr-history";
    };
  };
  archiveBucket = {
    services.vultr-scraper = {
      enable = true;
      credentialFiles.s3-access = "/run/keys/s3-access";
      credentialFiles.s3-secret = "/run/keys/s3-secret";
      settings.history = {
        archive = "s3://vultr-history/prod";
        s3_endpoint_url = "https://ewr1.vultrobjects.com";
        s3_access_key_file = "s3-access";
        s3_secret_key_file = "s3-secret";
      };
    };
  };

  # An existing Redis elsewhere.
  externalRedis = {
    services.vultr-scraper = {
      enable = true;
      redis.createLocally = false;
      settings.redis.url = "redis://redis.internal:6379/2";
    };
  };

  # Redis behind Sentinel, over TLS, with the CA and the passwords as credentials.
  sentinelRedis = {
    services.vultr-scraper = {
      enable = true;
      redis.createLocally = false;
      credentialFiles = {
        redis-ca = "/run/keys/redis-ca.pem";
        redis-password = "/run/keys/redis-password";
        redis-sentinel-password = "/run/keys/redis-sentinel-password";
      };
      settings.redis = {
        sentinels = [
          "10.0.0.1:26379"
          "10.0.0.2:26379"
          "10.0.0.3:26379"
        ];
        service_name = "vultr-scraper";
        tls = true;
        ca_file = "redis-ca";
        password_file = "redis-password";
        sentinel_password_file = "redis-sentinel-password";
      };
    };
  };

  # The same as one URL.
  sentinelUrl = {
    services.vultr-scraper = {
      enable = true;
      redis.createLocally = false;
      settings.redis.url = "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/vultr-scraper/0";
    };
  };

  # Disabled: the module must add nothing.
  disabled = {
    services.vultr-scraper.settings.http.listen = "0.0.0.0:1";
  };

  # --- configurations that must be rejected -------------------------------------------------
  noRedis = {
    services.vultr-scraper = {
      enable = true;
      redis.createLocally = false;
    };
  };

  sentinelsWithLocalRedis = {
    services.vultr-scraper = {
      enable = true;
      settings.redis.sentinels = [ "10.0.0.1:26379" ];
    };
  };

  firewallWithoutPort = {
    services.vultr-scraper = {
      enable = true;
      openFirewall = true;
      settings.http.listen = "";
    };
  };

  reservedCredential = {
    services.vultr-scraper = {
      enable = true;
      apiKeyFile = "/run/keys/a";
      credentialFiles.vultr-api-key = "/run/keys/b";
    };
  };

  optionTypo = {
    services.vultr-scraper = {
      enable = true;
      redis.createLocaly = false;
    };
  };

  negativeWait = {
    services.vultr-scraper = {
      enable = true;
      settings.worker.job_completion_wait = -1;
    };
  };

  badRedisScheme = {
    services.vultr-scraper = {
      enable = true;
      settings.redis.url = "http://127.0.0.1:6379";
    };
  };

  badLogLevel = {
    services.vultr-scraper = {
      enable = true;
      settings.log.level = "verbose";
    };
  };
}
