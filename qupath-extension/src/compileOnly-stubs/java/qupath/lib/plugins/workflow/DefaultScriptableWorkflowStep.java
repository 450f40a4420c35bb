package qupath.lib.plugins.workflow;

/** Stand-in: qupath-core DefaultScriptableWorkflowStep (the script is recorded as-is). */
public class DefaultScriptableWorkflowStep implements WorkflowStep {
    public DefaultScriptableWorkflowStep(String name, String script) { throw new UnsupportedOperationException("compile-only stand-in"); }
    public String getName() { throw new UnsupportedOperationException("compile-only stand-in"); }
}
