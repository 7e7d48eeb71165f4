# NixOS VM test (pkgs.testers.runNixOSTest): the module with its defaults (local Redis on a unix
# socket, hardened dynamic-user unit) against a fake Vultr API on loopback. Needs KVM and the
# binary cache: `nix build .#checks.x86_64-linux.vm -L`.
{ self }:
{
  name = "vultr-scraper";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ self.nixosModules.default ];

      systemd.services.fake-vultr-api = {
        description = "Fake Vultr API v2 for the test";
        wantedBy = [ "multi-user.target" ];
        before = [ "vultr-scraper.service" ];
        serviceConfig = {
          ExecStart = "${pkgs.python3.interpreter} ${./fake_vultr_api.py} --port 8001";
          DynamicUser = true;
        };
      };

      # A throw-away key: exercises LoadCredential and the credentials directory.
      environment.etc."vultr-scraper/api-key".text = "test-key-not-secret";

      services.vultr-scraper = {
        enable = true;
        apiKeyFile = "/etc/vultr-scraper/api-key";
        openFirewall = true;
        settings = {
          vultr.base_url = "http://127.0.0.1:8001/v2";
          http.listen = "127.0.0.1:8080";
          worker.job_completion_wait = 5;
        };
      };
    };

  testScript = ''
    import json

    machine.wait_for_unit("fake-vultr-api.service")
    machine.wait_for_open_port(8001)
    machine.wait_for_unit("redis-vultr-scraper.service")
    machine.wait_for_unit("vultr-scraper.service")

    with subtest("exactly one unit, active, hardened"):
        machine.succeed("systemctl is-active vultr-scraper.service")
        units = machine.succeed("systemctl list-units --all --plain --no-legend 'vultr-scraper*'")
        assert len(units.strip().splitlines()) == 1, units
        score = machine.succeed("systemd-analyze security vultr-scraper.service | tail -n 1")
        print(score)
        exposure = float(score.split(":")[1].split()[0])
        assert exposure <= 2.0, score

    with subtest("configuration is accepted and the worker is healthy"):
        machine.succeed("vultr-scraper config check")
        machine.wait_until_succeeds("vultr-scraper check", timeout=60)

    with subtest("a catalogue scrape completes"):
        result = json.loads(machine.succeed("vultr-scraper run scrape-catalog"))
        assert result["status"] == "success", result

    with subtest("plans are queryable"):
        output = machine.succeed("vultr-scraper plans --json")
        json.loads(output)
        assert "vc2-1c-1gb" in output, output

    with subtest("systemctl stop exits cleanly"):
        machine.succeed("systemctl stop vultr-scraper.service")
        result = machine.succeed("systemctl show -P Result vultr-scraper.service").strip()
        assert result == "success", result
        machine.fail("systemctl is-failed vultr-scraper.service")
  '';
}
