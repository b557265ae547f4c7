// Test helpers: a `nami-sim` process per test (TCP terminal + HTTP control API), ECR references,
// a closed port, calls on another thread, and a small reader for flat JSON values.
package sa.nami.tests

import java.io.BufferedReader
import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.URI
import java.time.Duration
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import sa.nami.TerminalConfig

const val CASH_REGISTER = "12345678"
const val TERMINAL_ID = "8184000200000077"

/** `$NAMI_SIM`, else `target/debug/nami-sim` of the repository (the working directory). */
val SIM_BIN: String = System.getenv("NAMI_SIM") ?: File("target/debug/nami-sim").absolutePath

/** A running `nami-sim`: its TCP address and its control API. */
class Sim(vararg args: String) {
    private val process: Process =
        ProcessBuilder(SIM_BIN, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", *args)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start()
    val host: String
    val port: Int
    private val control: String

    init {
        val reader: BufferedReader = process.inputStream.bufferedReader()
        var controlUrl: String? = null
        var listen: String? = null
        while (listen == null) {
            val line = reader.readLine() ?: error("$SIM_BIN did not start")
            if (line.startsWith("control on ")) controlUrl = line.removePrefix("control on ").trim()
            if (line.startsWith("listening on ")) listen = line.removePrefix("listening on ").trim()
        }
        control = controlUrl ?: error("the simulator printed no control address")
        host = listen.substringBeforeLast(':')
        port = listen.substringAfterLast(':').toInt()
    }

    val key: String get() = "$host:$port"

    fun post(path: String, body: String = "{}"): String {
        val connection = URI(control + path).toURL().openConnection() as HttpURLConnection
        connection.requestMethod = "POST"
        connection.doOutput = true
        connection.setRequestProperty("Content-Type", "application/json")
        connection.outputStream.use { it.write(body.toByteArray()) }
        return connection.inputStream.use { it.readBytes().decodeToString() }
    }

    fun get(path: String): String {
        val connection = URI(control + path).toURL().openConnection() as HttpURLConnection
        return connection.inputStream.use { it.readBytes().decodeToString() }
    }

    fun state(): String = get("/state")

    fun cardTap(enabled: Boolean) = post("/card-tap", """{"enabled":$enabled}""")

    fun tap() = post("/tap")

    fun fault(name: String) = post("/fault", """{"fault":"$name"}""")

    /** Waits until a transaction waits for a card tap. */
    fun waitForCard(timeoutMillis: Long = 10_000) {
        val deadline = System.currentTimeMillis() + timeoutMillis
        while (System.currentTimeMillis() < deadline) {
            if (state().jsonValue("waitingForCard") == "true") return
            Thread.sleep(20)
        }
        error("no transaction waited for a card")
    }

    fun stop() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly().waitFor()
    }
}

private val sequence = AtomicInteger(1)

/** A new 14-digit ECR reference (cash register 12345678) at each call. */
fun nextRef(): String = CASH_REGISTER + "%06d".format(sequence.getAndIncrement())

/** Short deadlines, so that a test that goes wrong fails fast. */
fun quickConfig(cardPresent: Duration = Duration.ofSeconds(15)) = TerminalConfig(
    cardPresentTimeout = cardPresent,
    settlementTimeout = Duration.ofSeconds(15),
    adminTimeout = Duration.ofSeconds(10),
)

/** A local TCP port nothing listens on. */
fun closedPort(): Int = ServerSocket(0).use { it.localPort }

/** Runs [call] on another thread, keeping its result or what it threw. */
class InThread<T>(call: () -> T) {
    @Volatile var result: T? = null
    @Volatile var error: Throwable? = null
    @Volatile var endedAt: Long = 0
    private val thread = Thread {
        try {
            result = call()
        } catch (e: Throwable) {
            error = e
        }
        endedAt = System.nanoTime()
    }.apply { isDaemon = true; start() }

    fun join(timeoutMillis: Long = 20_000): InThread<T> {
        thread.join(timeoutMillis)
        check(!thread.isAlive) { "the call did not end" }
        return this
    }
}

/** The value of `"name": ...` in flat JSON text (a string without its quotes, or the literal). */
fun String.jsonValue(name: String): String? {
    val match = Regex("\"" + Regex.escape(name) + "\"\\s*:\\s*(\"((?:[^\"\\\\]|\\\\.)*)\"|[^,}\\]\\s]+)").find(this)
        ?: return null
    return match.groups[2]?.value ?: match.groups[1]?.value
}
