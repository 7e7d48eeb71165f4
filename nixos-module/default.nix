# NixOS module: services.vultr-scraper. Produces exactly one unit, vultr-scraper.service, running
# `vultr-scraper worker` (cron + queue + HTTP API) under a dynamic user, plus (by default) a
# local Redis on a unix socket through services.redis.servers.vultr-scraper.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.vultr-scraper;
  settingsFormat = pkgs.formats.toml { };

  redisName = "vultr-scraper";
  redisServer = config.services.redis.servers.${redisName};
  redisUnit = "redis-${redisName}.service";

  # systemd credential id of services.vultr-scraper.apiKeyFile; the app resolves relative
  # `*_file` paths against $CREDENTIALS_DIRECTORY.
  apiKeyCredential = "vultr-api-key";
  credentials =
    lib.optionalAttrs (cfg.apiKeyFile != null) { ${apiKeyCredential} = cfg.apiKeyFile; }
    // cfg.credentialFiles;
  loadCredential = lib.mapAttrsToList (id: path: "${id}:${path}") credentials;

  # TOML has no null: options left at null are simply not written.
  renderedSettings = lib.filterAttrsRecursive (_: value: value != null) cfg.settings;
  configFile = settingsFormat.generate "vultr-scraper.toml" renderedSettings;

  listen = cfg.settings.http.listen;
  listenPort =
    let
      match = builtins.match ".*:([0-9]+)" listen;
    in
    if match == null then null else lib.toInt (builtins.head match);

  stateDirectory = "vultr-scraper";
  # The history archive: a local directory outside the state directory must be made writable
  # (ProtectSystem=strict); an s3:// location needs nothing here.
  archive = cfg.settings.history.archive;
  archiveNeedsPath =
    archive != null
    && lib.hasPrefix "/" archive
    && !(lib.hasPrefix "/var/lib/${stateDirectory}/" "${archive}/");
  jobCompletionWait = cfg.settings.worker.job_completion_wait;

  # Identity, credentials and environment shared by the unit and the admin CLI wrapper below.
  sharedServiceConfig = {
    DynamicUser = true;
    # A fixed name: the admin CLI runs as the same dynamic user (same UID) through systemd-run,
    # so the state directory keeps one owner.
    User = "vultr-scraper";
    Group = "vultr-scraper";
    StateDirectory = stateDirectory;
    StateDirectoryMode = "0700";
    WorkingDirectory = "/var/lib/${stateDirectory}";
    SupplementaryGroups = lib.optional cfg.redis.createLocally redisServer.group;
    LoadCredential = loadCredential;
  }
  // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = cfg.environmentFile; };

  hardening = {
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    DeviceAllow = "";
    DevicePolicy = "closed";
    KeyringMode = "private";
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    NoNewPrivileges = true;
    PrivateDevices = true;
    PrivateMounts = true;
    PrivateTmp = true;
    PrivateUsers = true;
    ProcSubset = "pid";
    ProtectClock = true;
    ProtectControlGroups = true;
    ProtectHome = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectProc = "invisible";
    ProtectSystem = "strict";
    RemoveIPC = true;
    # AF_UNIX for the Redis socket and journald; AF_INET/AF_INET6 for the Vultr API, the probed
    # endpoints and the HTTP listener.
    RestrictAddressFamilies = [
      "AF_UNIX"
      "AF_INET"
      "AF_INET6"
    ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    SystemCallArchitectures = "native";
    SystemCallErrorNumber = "EPERM";
    SystemCallFilter = [
      "@system-service"
      "~@privileged"
      "~@resources"
    ];
    UMask = "0077";
  };

  # Root's entry point for the CLI (`vultr-scraper plans --json`, `run scrape-catalog`, ...):
  # runs the command as a transient unit with the service's user, state directory,
  # credentials, Redis group and configuration, so it sees exactly what the worker sees.
  cliWrapper = pkgs.writeShellScriptBin "vultr-scraper" ''
    if [ "$(id -u)" != 0 ]; then
      echo "vultr-scraper: run this as root; it starts the command as the service's dynamic user via systemd-run" >&2
      exit 77
    fi
    exec ${config.systemd.package}/bin/systemd-run --quiet --wait --pipe --collect \
      --service-type=exec \
      ${
        lib.escapeShellArgs (
          lib.concatLists (
            lib.mapAttrsToList (
              name: value:
              map (item: "--property=${name}=${toString item}") (lib.toList value)
            ) (lib.filterAttrs (_: value: value != [ ]) (sharedServiceConfig // { DynamicUser = "yes"; }))
          )
          ++ [
            "--setenv=VULTR_SCRAPER_CONFIG=${configFile}"
            "--"
            (lib.getExe cfg.package)
          ]
        )
      } "$@"
  '';
in
{
  options.services.vultr-scraper = {
    enable = lib.mkEnableOption "vultr-scraper, the Vultr catalogue tracker and endpoint health checker";

    package = lib.mkOption {
      type = lib.types.package;
      default =
        pkgs.vultr-scraper
          or (throw "services.vultr-scraper.package has no default: import the flake's nixosModules.default, or apply its overlays.default");
      defaultText = lib.literalExpression "vultr-scraper from the flake (packages.\${system}.default)";
      description = "The vultr-scraper package; its `bin/vultr-scraper` is the worker and the CLI.";
    };

    settings = lib.mkOption {
      default = { };
      description = ''
        Configuration written to the TOML file named by `VULTR_SCRAPER_CONFIG`. Every key the
        application knows has a default, so only what differs needs setting; unknown keys make
        the service fail with exit status 78 (not restarted). Options below are the ones this
        module sets or reads; any other key of the file format (`client`, `catalog`, `schedules`,
        `health.endpoints`, `alerts`, `sinks`, ...) can be given freely. Secrets never go here:
        use `apiKeyFile` / `credentialFiles` and refer to credentials by their id.
      '';
      example = lib.literalExpression ''
        {
          http.listen = "0.0.0.0:8080";
          health.endpoints = [ { name = "site"; url = "https://example.org/healthz"; } ];
        }
      '';
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        options = {
          redis = lib.mkOption {
            default = { };
            description = "Redis connection (`[redis]`).";
            type = lib.types.submodule {
              freeformType = settingsFormat.type;
              options = {
                url = lib.mkOption {
                  type = lib.types.nullOr (
                    lib.types.strMatching "(redis|rediss|unix|redis\\+sentinel|rediss\\+sentinel)://.*"
                  );
                  default =
                    if cfg.redis.createLocally then "unix://${redisServer.unixSocket}" else null;
                  defaultText = lib.literalExpression ''
                    if config.services.vultr-scraper.redis.createLocally
                    then "unix://''${config.services.redis.servers.vultr-scraper.unixSocket}"
                    else null
                  '';
                  example = "rediss+sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/vultr-scraper/0";
                  description = ''
                    Redis URL: `redis://`, `rediss://` (TLS) or `unix://`, or Sentinel
                    (`redis+sentinel://host:port,host:port/service_name[/db]`,
                    `rediss+sentinel://` for TLS). Required when `redis.createLocally` is off and
                    `sentinels` is not set; by default the local server's unix socket
                    (`unix:///run/redis-vultr-scraper/redis.sock`). Never put a password here:
                    use `password_file`.
                  '';
                };
                sentinels = lib.mkOption {
                  type = lib.types.nullOr (lib.types.nonEmptyListOf lib.types.str);
                  default = null;
                  example = [
                    "10.0.0.1:26379"
                    "10.0.0.2:26379"
                    "10.0.0.3:26379"
                  ];
                  description = ''
                    Redis Sentinel as a list of `host:port` (instead of a `redis+sentinel://`
                    URL); the worker asks them for the primary of `service_name` and follows a
                    failover. Needs `redis.createLocally = false` and `url` unset. See "Redis
                    high availability" in docs/operations.md.
                  '';
                };
                service_name = lib.mkOption {
                  type = lib.types.nullOr lib.types.str;
                  default = null;
                  example = "vultr-scraper";
                  description = ''
                    The name the sentinels monitor (application default `mymaster`); with
                    `sentinels` only.
                  '';
                };
                ca_file = lib.mkOption {
                  type = lib.types.nullOr lib.types.str;
                  default = null;
                  example = "redis-ca";
                  description = ''
                    CA certificate(s) (PEM) that sign the Redis servers' certificates, for
                    `rediss://`, `rediss+sentinel://` or `tls = true` (null: the system's trust
                    store). A relative path is a credential id from `credentialFiles`. Likewise
                    `cert_file` / `key_file` (a client certificate), `password_file` and
                    `sentinel_password_file` take credential ids.
                  '';
                };
              };
            };
          };

          vultr = lib.mkOption {
            default = { };
            description = "Vultr API (`[vultr]`).";
            type = lib.types.submodule {
              freeformType = settingsFormat.type;
              options = {
                base_url = lib.mkOption {
                  type = lib.types.str;
                  default = "https://api.vultr.com/v2";
                  description = "Base URL of the Vultr API v2.";
                };
                api_key_file = lib.mkOption {
                  type = lib.types.nullOr lib.types.str;
                  default = if cfg.apiKeyFile != null then apiKeyCredential else null;
                  defaultText = lib.literalExpression ''
                    if config.services.vultr-scraper.apiKeyFile != null then "${apiKeyCredential}" else null
                  '';
                  description = ''
                    File holding the Vultr API key, relative to the unit's credentials
                    directory. Set `apiKeyFile` instead of this. The catalogue endpoints need no key.
                  '';
                };
              };
            };
          };

          http = lib.mkOption {
            default = { };
            description = "The worker's HTTP API, status page and metrics (`[http]`).";
            type = lib.types.submodule {
              freeformType = settingsFormat.type;
              options.listen = lib.mkOption {
                type = lib.types.str;
                default = "127.0.0.1:8080";
                example = "[::]:8080";
                description = ''
                  `host:port` of the HTTP listener; an empty string disables it. `openFirewall`
                  opens its port.
                '';
              };
            };
          };

          worker = lib.mkOption {
            default = { };
            description = "Worker behaviour (`[worker]`).";
            type = lib.types.submodule {
              freeformType = settingsFormat.type;
              options.job_completion_wait = lib.mkOption {
                type = lib.types.numbers.nonnegative;
                default = 30;
                description = ''
                  Seconds the worker waits for running jobs after SIGTERM before cancelling
                  them. The unit's `TimeoutStopSec` is derived from it (plus 30 s).
                '';
              };
            };
          };

          history = lib.mkOption {
            default = { };
            description = "The Redis window and the history archive (`[history]`).";
            type = lib.types.submodule {
              freeformType = settingsFormat.type;
              options.archive = lib.mkOption {
                type = lib.types.nullOr lib.types.str;
                default = null;
                example = "s3://vultr-history/prod";
                description = ''
                  Where history older than the Redis window goes: a directory (null: the
                  `archive` directory in the state directory, /var/lib/${stateDirectory}/archive;
                  another absolute directory is added to the unit's `ReadWritePaths`) or
                  `s3://bucket/prefix` for an S3-compatible bucket shared by several workers
                  (set `s3_endpoint_url`, and `s3_access_key_file` / `s3_secret_key_file` to
                  credential ids from `credentialFiles`).
                '';
              };
            };
          };

          log = lib.mkOption {
            default = { };
            description = "Logging (`[log]`); logs go to the journal as one JSON object per line.";
            type = lib.types.submodule {
              freeformType = settingsFormat.type;
              options.level = lib.mkOption {
                type = lib.types.enum [
                  "TRACE"
                  "DEBUG"
                  "INFO"
                  "SUCCESS"
                  "WARNING"
                  "ERROR"
                  "CRITICAL"
                ];
                default = "INFO";
                description = "Minimum log level.";
              };
            };
          };
        };
      };
    };

    apiKeyFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/keys/vultr-api-key";
      description = ''
        File holding the Vultr API key, read by systemd (`LoadCredential=`) and handed to the
        service as credential `${apiKeyCredential}`; it never enters the Nix store (give a string,
        not a Nix path literal). Optional: the catalogue endpoints need no key.
      '';
    };

    credentialFiles = lib.mkOption {
      type = lib.types.attrsOf lib.types.path;
      default = { };
      example = {
        http-token = "/run/keys/vultr-scraper-http-token";
      };
      description = ''
        Further secret files passed with `LoadCredential=`, by credential id. Refer to them in
        `settings` by id, e.g. `settings.http.token_file = "http-token";` or a sink's
        `secret_file`.
      '';
    };

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/keys/vultr-scraper.env";
      description = ''
        File with `VULTR_SCRAPER__SECTION__KEY=value` lines (systemd `EnvironmentFile=`) that
        override settings without putting them in the Nix store.
      '';
    };

    redis.createLocally = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Run a local Redis (`services.redis.servers.vultr-scraper`) on a unix socket with
        append-only persistence, and connect to it. Turn off to use `settings.redis.url`.
      '';
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open the TCP port of `settings.http.listen` in the firewall.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion =
          cfg.redis.createLocally
          || cfg.settings.redis.url != null
          || cfg.settings.redis.sentinels != null;
        message = ''
          services.vultr-scraper: no Redis to use. Set services.vultr-scraper.settings.redis.url
          (e.g. "redis://host:6379/0") or settings.redis.sentinels, or enable
          services.vultr-scraper.redis.createLocally.
        '';
      }
      {
        assertion = cfg.settings.redis.sentinels == null || !cfg.redis.createLocally;
        message = ''
          services.vultr-scraper: settings.redis.sentinels names the Redis to use; set
          services.vultr-scraper.redis.createLocally = false (the local server would go unused).
        '';
      }
      {
        assertion = !cfg.openFirewall || listenPort != null;
        message = ''
          services.vultr-scraper.openFirewall needs a port in settings.http.listen
          (now "${listen}"), e.g. "0.0.0.0:8080".
        '';
      }
      {
        assertion = cfg.apiKeyFile == null || !(cfg.credentialFiles ? ${apiKeyCredential});
        message = ''
          services.vultr-scraper: credential id "${apiKeyCredential}" is reserved for apiKeyFile;
          rename it in services.vultr-scraper.credentialFiles.
        '';
      }
    ];

    services.redis.servers.${redisName} = lib.mkIf cfg.redis.createLocally {
      enable = true;
      port = lib.mkDefault 0; # unix socket only
      appendOnly = lib.mkDefault true; # the catalogue history lives here
    };

    networking.firewall.allowedTCPPorts = lib.mkIf (cfg.openFirewall && listenPort != null) [
      listenPort
    ];

    environment.systemPackages = [ cliWrapper ];

    systemd.services.vultr-scraper = {
      description = "vultr-scraper worker (Vultr catalogue, stock and endpoint health)";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ] ++ lib.optional cfg.redis.createLocally redisUnit;
      requires = lib.optional cfg.redis.createLocally redisUnit;

      environment.VULTR_SCRAPER_CONFIG = "${configFile}";

      serviceConfig = sharedServiceConfig // hardening // {
        Type = "exec";
        ExecStart = "${lib.getExe cfg.package} worker";
        Restart = "on-failure";
        RestartSec = 5;
        # 78 = EX_CONFIG: a configuration error is not fixed by restarting.
        RestartPreventExitStatus = 78;
        # arq waits job_completion_wait seconds for running jobs after SIGTERM.
        TimeoutStopSec = builtins.ceil jobCompletionWait + 30;
      }
      // lib.optionalAttrs archiveNeedsPath { ReadWritePaths = [ archive ]; };
    };
  };
}
