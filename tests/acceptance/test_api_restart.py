"""Stop the server and start it again on the same data directory: lists, topics, tags and contacts remain."""

from __future__ import annotations

from pathlib import Path

from tests.support.server import run_server

from .conftest import make_client


def test_everything_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    topics = [{"TopicName": "news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_IN"}]
    with run_server(data_dir) as server:
        ses = make_client(server.url)
        ses.update_contact_list(ContactListName="contacts", Topics=topics, Description="kept")
        ses.tag_resource(
            ResourceArn="arn:aws:ses:us-east-1:000000000000:contact-list/contacts", Tags=[{"Key": "k", "Value": "v"}]
        )
        ses.create_contact(
            ContactListName="contacts",
            EmailAddress="üñï+tag@exämple.com",
            TopicPreferences=[{"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}],
            AttributesData='{"a": 1}',
        )
        before_list = ses.get_contact_list(ContactListName="contacts")
        before = ses.get_contact(ContactListName="contacts", EmailAddress="üñï+tag@exämple.com")
        assert server.process.poll() is None

    with run_server(data_dir) as server:
        ses = make_client(server.url)
        after_list = ses.get_contact_list(ContactListName="contacts")
        after = ses.get_contact(ContactListName="contacts", EmailAddress="üñï+tag@exämple.com")
        for response in (before_list, after_list, before, after):
            response.pop("ResponseMetadata")
        assert after_list == before_list
        assert after == before
        assert [c["EmailAddress"] for c in ses.list_contacts(ContactListName="contacts")["Contacts"]] == [
            "üñï+tag@exämple.com"
        ]
