"""The configuration: one TOML file and ``VULTR_SCRAPER__*`` variables, as typed Structs.

Every key has a default, so no file is needed. Three modules, each with one concern:

* ``schema``: every table and key with its default (``Config`` and its sections), and the
  range and consistency rules that types cannot express (``problems``);
* ``loading``: the file, the environment overrides, validation and the one-line
  ``ConfigError`` naming the key and its source (``load_config``, ``LoadedConfig``);
* ``secrets``: the ``*_file`` secrets, inline credentials and masking for display (``Secrets``,
  ``mask_url``, ``config_to_dict``).

The names below are the public ones; import them from here.
"""

from vultr_scraper_core.config.loading import (
    CONFIG_PATH_ENV,
    ENV_PREFIX,
    EX_CONFIG,
    ConfigError,
    LoadedConfig,
    describe_source,
    load_config,
    state_dir,
)
from vultr_scraper_core.config.schema import (
    ALERT_KINDS,
    LOG_LEVELS,
    AlertConfig,
    CatalogConfig,
    CatalogGateConfig,
    ClientConfig,
    Config,
    DeliveriesConfig,
    EndpointConfig,
    HealthConfig,
    HttpConfig,
    ListenAddress,
    LogConfig,
    PathsConfig,
    RedisConfig,
    ScheduleConfig,
    SchedulesConfig,
    SinkConfig,
    StockConfig,
    StockGateConfig,
    TimeoutsConfig,
    VultrConfig,
    WindowConfig,
    WorkerConfig,
    alert_share_conditions,
    parse_listen,
    smtp_port,
)
from vultr_scraper_core.config.secrets import MASK, Secrets, config_to_dict, mask_url

__all__ = [
    "ALERT_KINDS",
    "CONFIG_PATH_ENV",
    "ENV_PREFIX",
    "EX_CONFIG",
    "LOG_LEVELS",
    "MASK",
    "AlertConfig",
    "CatalogConfig",
    "CatalogGateConfig",
    "ClientConfig",
    "Config",
    "ConfigError",
    "DeliveriesConfig",
    "EndpointConfig",
    "HealthConfig",
    "HttpConfig",
    "ListenAddress",
    "LoadedConfig",
    "LogConfig",
    "PathsConfig",
    "RedisConfig",
    "ScheduleConfig",
    "SchedulesConfig",
    "Secrets",
    "SinkConfig",
    "StockConfig",
    "StockGateConfig",
    "TimeoutsConfig",
    "VultrConfig",
    "WindowConfig",
    "WorkerConfig",
    "alert_share_conditions",
    "config_to_dict",
    "describe_source",
    "load_config",
    "mask_url",
    "parse_listen",
    "smtp_port",
    "state_dir",
]
