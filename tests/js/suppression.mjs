// The AWS JS SDK v3 on the account suppression list: put, get, list by reason and date with pagination, a bad
// token, GetAccount, delete. Its query serializer writes StartDate as ISO-8601 and its parser wants epoch numbers.
// Usage: node suppression.mjs  (SES_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, PREFIX from the environment)
import {
  PutSuppressedDestinationCommand,
  GetSuppressedDestinationCommand,
  ListSuppressedDestinationsCommand,
  DeleteSuppressedDestinationCommand,
  GetAccountCommand,
} from "@aws-sdk/client-sesv2";
import { client } from "./client.mjs";

const prefix = process.env.PREFIX;
const failure = (error) => ({ name: error.name, message: error.message, status: error.$metadata.httpStatusCode });
const out = {};

const since = new Date(Date.now() - 60_000);
const addresses = [];
for (let i = 0; i < 5; i++) addresses.push(`${prefix}-${i}@example.com`);
for (const address of addresses) {
  await client.send(new PutSuppressedDestinationCommand({ EmailAddress: address, Reason: "BOUNCE" }));
}
const got = await client.send(new GetSuppressedDestinationCommand({ EmailAddress: addresses[2] }));
const entry = got.SuppressedDestination;
out.entry = {
  EmailAddress: entry.EmailAddress,
  Reason: entry.Reason,
  lastUpdateIsDate: entry.LastUpdateTime instanceof Date && entry.LastUpdateTime.getTime() >= since.getTime(),
};

out.listed = [];
out.pageSizes = [];
let token;
do {
  const page = await client.send(new ListSuppressedDestinationsCommand({
    Reasons: ["BOUNCE"], StartDate: since, PageSize: 2, NextToken: token,
  }));
  out.listed.push(...page.SuppressedDestinationSummaries.map((s) => s.EmailAddress));
  out.pageSizes.push(page.SuppressedDestinationSummaries.length);
  token = page.NextToken;
} while (token);

try {
  await client.send(new ListSuppressedDestinationsCommand({ NextToken: "forged" }));
  out.badToken = "no error";
} catch (error) {
  out.badToken = failure(error);
}
const account = await client.send(new GetAccountCommand({}));
out.account = account.SuppressionAttributes.SuppressedReasons;

for (const address of addresses) {
  await client.send(new DeleteSuppressedDestinationCommand({ EmailAddress: address }));
}
try {
  await client.send(new GetSuppressedDestinationCommand({ EmailAddress: addresses[0] }));
  out.missing = "no error";
} catch (error) {
  out.missing = failure(error);
}
console.log(JSON.stringify(out));
