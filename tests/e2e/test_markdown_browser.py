"""A project's description and instructions show as Markdown in a real browser, and run nothing.

Debian's chromium driven by Playwright against the live server: the owner's headings, lists,
code and links appear as such on the overview, while the script, event handlers and
`javascript:` links written into the same text neither run nor become links.
"""

import pytest
from playwright.sync_api import expect

from tests.factories import ProjectFactory, UserFactory

pytest_plugins = ["tests.e2e.oidc"]
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESCRIPTION = """\
Tools for **packagers**, see [the docs](https://docs.example.org/tools).

<script>window.pwned = "script"</script>
<img src="/nothing.png" onerror="window.pwned = 'onerror'">
[click me](javascript:window.pwned='link')
"""
INSTRUCTIONS = """\
## Getting started

1. Enable the repository.
2. Install:

```
dnf install hello
```

<a href="javascript:window.pwned='raw'" onclick="window.pwned='click'">raw link</a>
"""


def test_description_and_instructions_render_as_markdown_and_run_nothing(live_server, browser_page):
    owner = UserFactory(username="alice")
    ProjectFactory(
        owner_user=owner, name="tools", description=DESCRIPTION, instructions=INSTRUCTIONS
    )
    page = browser_page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server.url}/coprs/alice/tools/")

    description = page.locator(".description")
    expect(description.locator("strong")).to_have_text("packagers")
    docs = description.get_by_role("link", name="the docs")
    expect(docs).to_have_attribute("href", "https://docs.example.org/tools")
    expect(docs).to_have_attribute("rel", "nofollow noopener noreferrer")
    # What would run is shown as text, and the javascript: link is no link.
    expect(description).to_contain_text('<script>window.pwned = "script"</script>')
    expect(description.get_by_role("link", name="click me")).to_have_count(0)

    instructions = page.locator(".instructions")
    expect(instructions.get_by_role("heading", name="Getting started", level=2)).to_be_visible()
    expect(instructions.locator("ol > li")).to_have_count(2)
    expect(instructions.locator("pre code")).to_have_text("dnf install hello\n")
    expect(instructions.get_by_role("link", name="raw link")).to_have_count(0)
    instructions.get_by_text("raw link").click()

    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator(".description script, .instructions script").count() == 0
    assert page.locator("[onerror], [onclick]").count() == 0
    assert dialogs == []


def test_project_lists_show_the_description_as_text_without_markup(live_server, browser_page):
    ProjectFactory(owner_user=UserFactory(username="bob"), name="kit", description=DESCRIPTION)
    page = browser_page
    for url in (f"{live_server.url}/", f"{live_server.url}/coprs/bob/"):
        page.goto(url)
        summary = page.get_by_text("Tools for packagers, see the docs.")
        expect(summary.first).to_be_visible()
        assert "**" not in summary.first.inner_text(), url
    assert page.evaluate("typeof window.pwned") == "undefined"
