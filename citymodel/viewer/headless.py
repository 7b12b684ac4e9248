"""Headless Chromium for checking a release's viewer (the project's browser tests and benchmarks).

Debian's ``chromium`` with its matching ``chromium-driver``, driven by Selenium (PyPI ``selenium``,
a development dependency); nothing is downloaded. WebGL runs in software (SwiftShader), so the
viewer renders on machines without a GPU. The flags keep Chromium from reaching the network on its
own (component updates, sync, background requests), which a closed network would refuse.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, dataset_error

__all__ = ["chromium_paths", "missing_reason", "start_chromium", "wait_for", "CHROMIUM_FLAGS"]

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-dev-shm-usage",
                  "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars")


@dataclass(frozen=True)
class ChromiumPaths:
    browser: str
    driver: str


def chromium_paths() -> ChromiumPaths | None:
    """Paths of Chromium and its driver, or None where either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    if not browser or not driver:
        return None
    return ChromiumPaths(browser, driver)


def missing_reason() -> str | None:
    """Why a headless browser cannot be started here (None when it can)."""
    if chromium_paths() is None:
        return ("Chromium or chromedriver not found: install Debian's 'chromium' and 'chromium-driver' "
                "(make install does it as root)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the Python package 'selenium' is missing: install the development extras (.[dev])"
    return None


def start_chromium(*, width: int = 1280, height: int = 800, download_dir: str | Path | None = None,
                   user_data_dir: str | Path | None = None, page_load_timeout_s: float = 300.0,
                   command_timeout_s: float = 900.0):
    """A Selenium WebDriver of headless Chromium with software WebGL.

    Parameters
    ----------
    width, height : int
        Window size (CSS pixels).
    download_dir : path, optional
        Where downloads go (a page's "save" writes there).
    page_load_timeout_s, command_timeout_s : float
        Longest page load and longest single WebDriver command (software rendering on a busy
        machine is slow).
    user_data_dir : path, optional
        A fresh profile folder (default: a new temporary one, removed by ``driver.quit()``'s caller).

    Raises
    ------
    ConfigError
        Chromium, its driver or selenium is missing (the message says what to install).
    """
    why = missing_reason()
    if why:
        raise dataset_error(ConfigError, "headless browser", why, "install it or skip the browser check")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = paths.browser
    for f in CHROMIUM_FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--window-size={width},{height}")
    profile = Path(user_data_dir) if user_data_dir else Path(tempfile.mkdtemp(prefix="citymodel-chromium-"))
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if download_dir is not None:
        opts.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                               "download.prompt_for_download": False,
                                               "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(paths.driver), options=opts)
    driver.command_executor.client_config.timeout = command_timeout_s
    driver.set_page_load_timeout(page_load_timeout_s)
    driver.set_script_timeout(command_timeout_s)
    if download_dir is not None:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    driver.citymodel_profile = profile
    return driver


def wait_for(fn: Callable[[], Any], timeout_s: float, *, interval_s: float = 0.5, what: str = "condition") -> Any:
    """Call ``fn`` until it returns a truthy value; raise TimeoutError after ``timeout_s``."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout_s:
        last = fn()
        if last:
            return last
        time.sleep(interval_s)
    raise TimeoutError(f"{what} not reached within {timeout_s:.0f} s (last value: {last!r})")
