pytest_plugins = ["shared.testing.plugin"]
