// hearth's resident Node bootstrap, as a sandbox executes it: serve.mjs, at once.
import { serve } from './serve.mjs'

serve()
