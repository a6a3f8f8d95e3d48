import { forgeSuite } from "../../src/sdk/forge-suite.js";
import { vectorSuite } from "../helpers/suite-vectors.js";

vectorSuite(forgeSuite);
