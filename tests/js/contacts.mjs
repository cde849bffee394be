// The AWS JS SDK v3 as a second, independent SES v2 client: create, get, list with pagination, delete.
// It parses timestamps strictly (epoch numbers), so it catches what botocore forgives.
// Usage: node contacts.mjs  (SES_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, LIST_NAME from the environment)
import {
  CreateContactListCommand,
  GetContactListCommand,
  CreateContactCommand,
  GetContactCommand,
  UpdateContactCommand,
  ListContactsCommand,
  DeleteContactCommand,
  DeleteContactListCommand,
} from "@aws-sdk/client-sesv2";
import { client } from "./client.mjs";

const list = process.env.LIST_NAME;
const out = {};

await client.send(new CreateContactListCommand({
  ContactListName: list,
  Topics: [{ TopicName: "news", DisplayName: "News", DefaultSubscriptionStatus: "OPT_IN" }],
}));
const got = await client.send(new GetContactListCommand({ ContactListName: list }));
out.listCreatedIsDate = got.CreatedTimestamp instanceof Date && !isNaN(got.CreatedTimestamp);

const addresses = [];
for (let i = 0; i < 7; i++) addresses.push(`js${i}+tag@exämple.com`);
for (const address of addresses) {
  await client.send(new CreateContactCommand({
    ContactListName: list, EmailAddress: address, AttributesData: JSON.stringify({ i: address }),
  }));
}
const contact = await client.send(new GetContactCommand({ ContactListName: list, EmailAddress: addresses[3] }));
out.contact = {
  EmailAddress: contact.EmailAddress,
  AttributesData: contact.AttributesData,
  TopicDefaultPreferences: contact.TopicDefaultPreferences,
  UnsubscribeAll: contact.UnsubscribeAll,
  createdIsDate: contact.CreatedTimestamp instanceof Date && !isNaN(contact.CreatedTimestamp),
  createdMs: contact.CreatedTimestamp.getTime(),
};
await client.send(new UpdateContactCommand({
  ContactListName: list, EmailAddress: addresses[3],
  TopicPreferences: [{ TopicName: "news", SubscriptionStatus: "OPT_OUT" }],
}));

out.pages = [];
let token;
do {
  const page = await client.send(new ListContactsCommand({ ContactListName: list, PageSize: 3, NextToken: token }));
  out.pages.push(page.Contacts.map((c) => c.EmailAddress));
  for (const c of page.Contacts) {
    if (!(c.LastUpdatedTimestamp instanceof Date) || isNaN(c.LastUpdatedTimestamp)) throw new Error("bad timestamp");
  }
  token = page.NextToken;
} while (token);

for (const address of addresses) {
  await client.send(new DeleteContactCommand({ ContactListName: list, EmailAddress: address }));
}
const empty = await client.send(new ListContactsCommand({ ContactListName: list }));
out.afterDelete = empty.Contacts.length;
try {
  await client.send(new GetContactCommand({ ContactListName: list, EmailAddress: addresses[0] }));
  out.missing = "no error";
} catch (error) {
  out.missing = { name: error.name, message: error.message, status: error.$metadata.httpStatusCode };
}
await client.send(new DeleteContactListCommand({ ContactListName: list }));
console.log(JSON.stringify(out));
