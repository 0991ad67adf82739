const ms = require('ms'); // from npm, installed by `lambdabox up`

exports.handler = async (event) => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ hello: event.pathParameters.name, resource: event.resource, minute: ms('1m') }),
});
