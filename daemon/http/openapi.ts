// GET /openapi.json: the API's OpenAPI 3.1 document (daemon/openapi/).
import { OPENAPI_JSON } from '../openapi/document.js'
import type { Exchange } from './exchange.js'

export function openapi (x: Exchange): void {
  x.json(200, OPENAPI_JSON)
}
