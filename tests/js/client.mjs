// The SES v2 client every script here uses: the server under test (SES_ENDPOINT) with its keys, no retries,
// so an error surfaces on the first answer.
import { SESv2Client } from "@aws-sdk/client-sesv2";

export const client = new SESv2Client({
  endpoint: process.env.SES_ENDPOINT,
  region: "us-east-1",
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
  maxAttempts: 1,
});
